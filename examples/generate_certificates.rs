//! Creates a server and a client CURVE certificate, as pyzmq's `generate_certificates.py`
//! does: `DIR/public_keys/{server,client}.key` and `DIR/private_keys/{server,client}.key_secret`.
//!
//! Run it with `cargo run --example generate_certificates -- DIR`.
//!
//! The files are in the layout pyzmq's `zmq.auth.load_certificate` and CZMQ's `zcert_load`
//! read; secret files are owner-only (0600). Give `DIR/public_keys` to
//! `Authenticator::configure_curve` to trust the client. Unlike pyzmq, which deletes the
//! three directories first, this replaces only the files it writes and keeps any others.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use actix_zap::certs::{create_certificates, Flavour};

fn main() {
    env_logger::init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir] = args.as_slice() else {
        eprintln!("usage: generate_certificates DIR");
        std::process::exit(2);
    };
    if let Err(e) = generate(Path::new(dir)) {
        eprintln!("generate_certificates: {e}");
        std::process::exit(1);
    }
}

fn generate(base: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let keys = base.join("certificates");
    let public_keys = base.join("public_keys");
    let private_keys = base.join("private_keys");
    for dir in [&keys, &public_keys, &private_keys] {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::set_permissions(&private_keys, std::fs::Permissions::from_mode(0o700))?;

    // Create both key files of each certificate in `certificates/` ...
    for name in ["server", "client"] {
        create_certificates(&keys, name, &[], Flavour::Pyzmq)?;
    }
    // ... then move public ones (*.key) to public_keys/ and secret ones to private_keys/.
    let mut files: Vec<_> = std::fs::read_dir(&keys)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.sort();
    for path in files {
        let Some(file) = path.file_name() else {
            continue;
        };
        let target = match path.extension().and_then(|e| e.to_str()) {
            Some("key") => public_keys.join(file),
            Some("key_secret") => private_keys.join(file),
            _ => continue,
        };
        std::fs::rename(&path, &target)?;
        println!("wrote {}", target.display());
    }
    // Empty now (unless it held other files).
    let _ = std::fs::remove_dir(&keys);
    Ok(())
}
