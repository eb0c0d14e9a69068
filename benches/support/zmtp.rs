//! A raw ZMTP 3.0 PLAIN client: sends what libzmq clients will not (an empty password), and
//! tells what the server answered to its HELLO. Shared by the integration tests
//! (`tests/integration/common`) and the guessing tool (`benches/guessing.rs`).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// The server's answer to a PLAIN HELLO.
#[derive(Debug, PartialEq, Eq)]
pub enum Hello {
    /// `WELCOME`: the ZAP handler said 200.
    Welcome,
    /// `ERROR` with its reason: the ZAP handler refused.
    Error(String),
    /// The connection closed without a command.
    Closed,
}

/// A ZMTP 3.0 greeting for `mechanism`, as a client.
fn greeting(mechanism: &str) -> [u8; 64] {
    let mut greeting = [0u8; 64];
    greeting[0] = 0xFF;
    greeting[9] = 0x7F;
    greeting[10] = 3; // version 3.0
    greeting[12..12 + mechanism.len()].copy_from_slice(mechanism.as_bytes());
    greeting
}

/// A command frame: its name and data.
fn command(name: &str, data: &[u8]) -> Vec<u8> {
    let mut body = vec![name.len() as u8];
    body.extend_from_slice(name.as_bytes());
    body.extend_from_slice(data);
    let mut frame = if body.len() < 256 {
        vec![0x04, body.len() as u8]
    } else {
        let mut long = vec![0x06];
        long.extend_from_slice(&(body.len() as u64).to_be_bytes());
        long
    };
    frame.extend(body);
    frame
}

/// Reads one command frame's body; `None` at end of stream.
fn read_command(stream: &mut TcpStream) -> std::io::Result<Option<Vec<u8>>> {
    let mut flags = [0u8; 1];
    if stream.read(&mut flags)? == 0 {
        return Ok(None);
    }
    let size = if flags[0] & 0x02 != 0 {
        let mut size = [0u8; 8];
        stream.read_exact(&mut size)?;
        u64::from_be_bytes(size) as usize
    } else {
        let mut size = [0u8; 1];
        stream.read_exact(&mut size)?;
        size[0] as usize
    };
    let mut body = vec![0u8; size];
    stream.read_exact(&mut body)?;
    Ok(Some(body))
}

/// Connects to a PLAIN server at `endpoint` (`tcp://127.0.0.1:PORT`) and says HELLO with
/// `username` and `password`, whatever their length.
pub fn plain_hello(endpoint: &str, username: &[u8], password: &[u8]) -> Hello {
    let address = endpoint.strip_prefix("tcp://").expect("a tcp endpoint");
    let mut stream = TcpStream::connect(address).expect("the server listens");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(&greeting("PLAIN")).unwrap();
    let mut theirs = [0u8; 64];
    stream
        .read_exact(&mut theirs)
        .expect("the server's greeting");
    assert_eq!(&theirs[12..17], b"PLAIN", "not a PLAIN server");
    let mut hello = vec![username.len() as u8];
    hello.extend_from_slice(username);
    hello.push(password.len() as u8);
    hello.extend_from_slice(password);
    stream.write_all(&command("HELLO", &hello)).unwrap();
    match read_command(&mut stream) {
        Ok(Some(body)) if body == b"\x07WELCOME" => Hello::Welcome,
        // A well-formed `ERROR` is `\x05ERROR`, a length byte and the reason. libzmq 4.3.4
        // sends `^RROR`, the length byte and the status code instead (seen on the wire, 9
        // bytes: `5E 52 52 4F 52 03 34 30 30`): both are told by their letters.
        Ok(Some(body)) if body.get(2..6) == Some(b"RROR") || body.get(1..5) == Some(b"RROR") => {
            let start = if body.get(1..5) == Some(b"RROR") {
                6
            } else {
                7
            };
            let reason = body.get(start..).unwrap_or_default();
            Hello::Error(String::from_utf8_lossy(reason).into_owned())
        }
        Ok(Some(body)) => panic!("unexpected command {body:?}"),
        Ok(None) | Err(_) => Hello::Closed,
    }
}
