//! `zapctl cert`: make a certificate, show one, and check a directory the way an
//! authenticator would load it.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use actix_zap::certs::{
    create_certificates, load_certificate, load_directory, FileError, Flavour, Layout,
};
use clap::Subcommand;

/// Exit code when a file cannot be written or read, or `check` finds a problem.
const FAILED: u8 = 1;

#[derive(Debug, Subcommand)]
pub enum CertCommand {
    /// Make a key pair: NAME.key (public) and NAME.key_secret (owner-only), like zmakecert
    New {
        /// File name stem: writes NAME.key and NAME.key_secret
        name: String,
        /// Directory to write into (created owner-only if missing)
        #[arg(long, short, value_name = "D", default_value = ".")]
        dir: PathBuf,
        /// Metadata the authenticator returns for this key, e.g. --meta role=frontend
        #[arg(long = "meta", value_name = "k=v", value_parser = parse_meta)]
        meta: Vec<(String, String)>,
        /// Write CZMQ's layout (metadata in the files' metadata section) instead of pyzmq's
        #[arg(long)]
        czmq: bool,
    },
    /// Show a certificate's public key and metadata (the secret key only with --secret)
    Show {
        /// A NAME.key or NAME.key_secret file (pyzmq or CZMQ layout)
        file: PathBuf,
        /// Also print the secret key, if the file holds one
        #[arg(long)]
        secret: bool,
    },
    /// Report what an authenticator would load from a directory of public certificates
    #[command(
        long_about = "Report what an authenticator would load from DIR: the keys, \
        every refused file with the reason, duplicate keys, files the layout ignores, and a \
        warning when DIR or a secret file in it is readable or writable by group or others. \
        Exits 1 when anything was refused or warned about."
    )]
    Check {
        /// The directory an authenticator would be pointed at
        dir: PathBuf,
        /// Read it as CZMQ's zcertstore does (every file except *_secret, recursively)
        /// instead of pyzmq's load_certificates (only *.key, not recursive)
        #[arg(long)]
        czmq: bool,
    },
}

pub fn run(command: CertCommand) -> u8 {
    let result = match command {
        CertCommand::New {
            name,
            dir,
            meta,
            czmq,
        } => new(&name, &dir, &meta, flavour(czmq)),
        CertCommand::Show { file, secret } => show(&file, secret),
        CertCommand::Check { dir, czmq } => {
            check(&dir, if czmq { Layout::Czmq } else { Layout::Pyzmq })
        }
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("zapctl cert: {message}");
            FAILED
        }
    }
}

fn flavour(czmq: bool) -> Flavour {
    if czmq {
        Flavour::Czmq
    } else {
        Flavour::Pyzmq
    }
}

fn parse_meta(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err(format!("{text:?} is not NAME=VALUE")),
    }
}

fn new(name: &str, dir: &Path, meta: &[(String, String)], flavour: Flavour) -> Result<u8, String> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let meta: Vec<(&str, &str)> = meta.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let (public, secret) =
        create_certificates(dir, name, &meta, flavour).map_err(|e| e.to_string())?;
    let cert = load_certificate(&public).map_err(|e| e.to_string())?;
    println!("public key: {}", cert.public_key);
    println!("wrote {} (public, give it to servers)", public.display());
    println!("wrote {} (secret, owner-only, keep it)", secret.display());
    Ok(0)
}

fn show(file: &Path, with_secret: bool) -> Result<u8, String> {
    let cert = load_certificate(file).map_err(|e| e.to_string())?;
    println!("public-key: {}", cert.public_key);
    for (name, value) in &cert.metadata {
        println!("metadata: {name} = {value}");
    }
    match (&cert.secret_key, with_secret) {
        (Some(secret), true) => println!("secret-key: {}", secret.to_z85()),
        (Some(_), false) => println!("secret-key: present (shown with --secret)"),
        (None, _) => println!("secret-key: none (a public certificate)"),
    }
    Ok(0)
}

/// Whether the layout reads a file of this name (mirrors `certs::load_directory`).
fn read_by(layout: Layout, name: &str) -> bool {
    match layout {
        Layout::Pyzmq => name.ends_with(".key"),
        Layout::Czmq => !name.ends_with("_secret"),
    }
}

/// Read and write permission for group and others.
const GROUP_OR_OTHER_RW: u32 = 0o066;

fn check(dir: &Path, layout: Layout) -> Result<u8, String> {
    let load = load_directory(dir, layout).map_err(|e| e.to_string())?;
    let mut problems = 0usize;
    let mut warn = |text: String| {
        problems += 1;
        println!("warning: {text}");
    };
    let mode = fs::metadata(dir).map_err(|e| e.to_string())?.mode();
    if mode & GROUP_OR_OTHER_RW != 0 {
        warn(format!(
            "{} is readable or writable by group or others (mode {:o}): chmod go-rw {}",
            dir.display(),
            mode & 0o777,
            dir.display()
        ));
    }
    let mut ignored = Vec::new();
    let mut secrets = Vec::new();
    list(dir, layout, &mut ignored, &mut secrets);
    for (path, mode) in &secrets {
        if mode & GROUP_OR_OTHER_RW != 0 {
            warn(format!(
                "secret file {} is readable or writable by group or others (mode {:o}): chmod 600 it, and keep secret files out of certificate directories",
                path.display(),
                mode & 0o777
            ));
        }
    }

    let mut keys: Vec<String> = load.store.keys().map(ToString::to_string).collect();
    keys.sort();
    println!(
        "loaded {} key(s) from {} ({layout:?} layout):",
        keys.len(),
        dir.display()
    );
    for key in &keys {
        println!("  key {key}");
    }
    let (duplicates, rejected): (Vec<_>, Vec<_>) = load
        .rejected
        .iter()
        .partition(|file| matches!(file.cause, FileError::DuplicateKey { .. }));
    for file in &rejected {
        println!("rejected {}: {}", file.path.display(), file.cause);
    }
    for file in &duplicates {
        println!("duplicate {}: {}", file.path.display(), file.cause);
    }
    for (path, why) in &ignored {
        println!("ignored {}: {why}", path.display());
    }
    let problems = problems + rejected.len() + duplicates.len();
    if problems == 0 {
        println!("ok: no problems found");
        Ok(0)
    } else {
        println!("{problems} problem(s) found");
        Ok(FAILED)
    }
}

/// Collects the files the layout ignores (with why) and the secret files (with their mode).
fn list(
    dir: &Path,
    layout: Layout,
    ignored: &mut Vec<(PathBuf, &'static str)>,
    secrets: &mut Vec<(PathBuf, u32)>,
) {
    let Ok(entries) = fs::read_dir(dir) else {
        return; // load_directory already reported it
    };
    let mut entries: Vec<_> = entries.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if name.ends_with("_secret") && meta.is_file() {
            secrets.push((path.clone(), meta.mode()));
        }
        if name.starts_with('.') {
            ignored.push((path, "hidden"));
        } else if meta.is_dir() {
            match layout {
                Layout::Czmq if !meta.file_type().is_symlink() => {
                    list(&path, layout, ignored, secrets)
                }
                _ => ignored.push((path, "a subdirectory (not read by this layout)")),
            }
        } else if !read_by(layout, &name) {
            let why = if name.ends_with("_secret") {
                "a secret file (never loaded)"
            } else {
                "not named *.key (pyzmq layout; --czmq reads every file)"
            };
            ignored.push((path, why));
        }
    }
}
