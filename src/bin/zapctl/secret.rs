//! A password from standard input: on a terminal, prompted for and typed without echo (the
//! terminal's mode is restored afterwards, whatever happens); otherwise its first line.

use std::io::{BufRead as _, IsTerminal as _, Write as _};

use rustix::termios::{tcgetattr, tcsetattr, LocalModes, OptionalActions, Termios};

/// Restores the terminal's mode when dropped.
struct EchoOff {
    saved: Termios,
}

impl EchoOff {
    /// Turns echo off on standard input (a terminal).
    fn new() -> std::io::Result<EchoOff> {
        let stdin = std::io::stdin();
        let saved = tcgetattr(&stdin)?;
        let mut quiet = saved.clone();
        quiet.local_modes.remove(LocalModes::ECHO);
        // The newline the user types is still shown, so the next line starts afresh.
        quiet.local_modes.insert(LocalModes::ECHONL);
        tcsetattr(&stdin, OptionalActions::Flush, &quiet)?;
        Ok(EchoOff { saved })
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        let _ = tcsetattr(std::io::stdin(), OptionalActions::Flush, &self.saved);
    }
}

/// Reads one line from standard input, without its line ending. On a terminal, `prompt` goes
/// to standard error and the typed text is not echoed.
pub fn read_secret(prompt: &str) -> Result<String, String> {
    let stdin = std::io::stdin();
    // Echo goes off before the prompt shows: nothing typed after the prompt is echoed.
    let _quiet = if stdin.is_terminal() {
        let quiet =
            EchoOff::new().map_err(|e| format!("cannot turn the terminal's echo off: {e}"))?;
        eprint!("{prompt}");
        let _ = std::io::stderr().flush();
        Some(quiet)
    } else {
        None
    };
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the password from standard input: {e}"))?;
    let line = line.strip_suffix('\n').unwrap_or(&line);
    let line = line.strip_suffix('\r').unwrap_or(line);
    Ok(line.to_owned())
}
