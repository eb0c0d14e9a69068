//! `zapctl cert`: make a certificate, show one, and check a directory the way an
//! authenticator would load it.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use actix_zap::certs::{
    certificate_paths, create_certificates, load_certificate_file, load_directory, secret_file_of,
    FileError, Flavour, Layout, SkipReason,
};
use clap::Subcommand;
use walkdir::WalkDir;

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
        /// Replace an existing NAME.key or NAME.key_secret (servers that trust the old public
        /// key will refuse the new one)
        #[arg(long)]
        force: bool,
    },
    /// Show what one certificate file holds: public key, metadata (the secret key only with
    /// --secret)
    Show {
        /// A NAME.key or NAME.key_secret file (pyzmq or CZMQ layout): exactly this file is
        /// read, never the secret file beside it
        file: PathBuf,
        /// Also print the secret key, if the file holds one
        #[arg(long)]
        secret: bool,
    },
    /// Report what an authenticator would load from a directory of public certificates
    #[command(
        long_about = "Report what an authenticator would load from DIR: the keys, every \
        refused file with the reason, duplicate keys, and every file the layout passes over \
        with the reason. Permissions are judged by what they protect: a directory of public \
        certificates must not be writable by group or others (anyone there could add or replace \
        a trusted key; readable is fine, e.g. 755); a secret key, and a directory holding one, \
        must be open to nobody but its owner (600 and 700). Exits 1 when a file was refused or \
        a permission is wrong."
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
            force,
        } => new(&name, &dir, &meta, flavour(czmq), force),
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

fn new(
    name: &str,
    dir: &Path,
    meta: &[(String, String)],
    flavour: Flavour,
    force: bool,
) -> Result<u8, String> {
    let (public, secret) = certificate_paths(dir, name);
    let existing: Vec<String> = [public, secret]
        .into_iter()
        .filter(|path| fs::symlink_metadata(path).is_ok())
        .map(|path| path.display().to_string())
        .collect();
    if !existing.is_empty() && !force {
        return Err(format!(
            "{} already exist(s): a new key pair would replace it, and servers that trust its \
             public key would refuse the new one; pass --force to replace it",
            existing.join(" and ")
        ));
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let meta: Vec<(&str, &str)> = meta.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let (public, secret) =
        create_certificates(dir, name, &meta, flavour).map_err(|e| e.to_string())?;
    let cert = load_certificate_file(&public).map_err(|e| e.to_string())?;
    println!("public key: {}", cert.public_key);
    println!("wrote {} (public, give it to servers)", public.display());
    println!("wrote {} (secret, owner-only, keep it)", secret.display());
    Ok(0)
}

/// Shows exactly `file`, saying so, and names a secret file beside it without reading it.
fn show(file: &Path, with_secret: bool) -> Result<u8, String> {
    let cert = load_certificate_file(file).map_err(|e| e.to_string())?;
    println!("read: {}", file.display());
    println!("public-key: {}", cert.public_key);
    for (name, value) in &cert.metadata {
        println!("metadata: {name} = {value}");
    }
    match (&cert.secret_key, with_secret) {
        (Some(secret), true) => println!("secret-key: {}", secret.to_z85()),
        (Some(_), false) => println!("secret-key: present (shown with --secret)"),
        (None, _) => {
            println!("secret-key: none in this file (a public certificate)");
            let beside = secret_file_of(file);
            if fs::symlink_metadata(&beside).is_ok() {
                println!(
                    "beside it: {} (not read; `zapctl cert show {}` shows it)",
                    beside.display(),
                    beside.display()
                );
            }
        }
    }
    Ok(0)
}

/// Read and write permission for group and others.
const GROUP_OR_OTHER: u32 = 0o077;
/// Write permission for group and others.
const GROUP_OR_OTHER_WRITE: u32 = 0o022;

fn check(dir: &Path, layout: Layout) -> Result<u8, String> {
    let load = load_directory(dir, layout).map_err(|e| e.to_string())?;
    // Every secret key in the directory: the secret files the layout passes over, and
    // certificates that hold one.
    let secrets: BTreeSet<PathBuf> = (load.skipped.iter())
        .filter(|file| file.reason == SkipReason::SecretFile)
        .map(|file| file.path.clone())
        .chain(load.with_secret_key.iter().cloned())
        .collect();
    // Files the layout reads: what it would trust.
    let passed_over: BTreeSet<&Path> = load
        .skipped
        .iter()
        .map(|file| file.path.as_path())
        .collect();
    let problems = permission_problems(dir, layout, &secrets, &passed_over);

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
    for file in &load.skipped {
        println!("skipped {}: {}", file.path.display(), file.reason);
    }
    for path in &load.with_secret_key {
        println!(
            "secret {}: loaded for its public key, but it holds a secret key too; servers \
             need only public certificates",
            path.display()
        );
    }
    for problem in &problems {
        println!("warning: {problem}");
    }
    let count = problems.len() + rejected.len() + duplicates.len();
    if count == 0 {
        println!("ok: no problems found");
        Ok(0)
    } else {
        println!("{count} problem(s) found");
        Ok(FAILED)
    }
}

/// Judges each directory and file the layout covers by what it protects: where a secret key
/// is, nobody but the owner may have any access (to the file or its directory); elsewhere,
/// nobody but the owner may write (add or replace a trusted key), and anyone may read.
fn permission_problems(
    dir: &Path,
    layout: Layout,
    secrets: &BTreeSet<PathBuf>,
    passed_over: &BTreeSet<&Path>,
) -> Vec<String> {
    let depth = match layout {
        Layout::Pyzmq => 1,
        Layout::Czmq => usize::MAX,
    };
    let walk = WalkDir::new(dir)
        .max_depth(depth)
        .into_iter()
        .filter_entry(|entry| {
            entry.depth() == 0 || !entry.file_name().to_string_lossy().starts_with('.')
        });
    let mut problems = Vec::new();
    for entry in walk.flatten() {
        let path = entry.path();
        // Links are judged by their target (what the authenticator reads).
        let Ok(meta) = fs::metadata(path) else {
            continue; // load_directory already reported it
        };
        let mode = meta.mode() & 0o777;
        let shown = path.display();
        if meta.is_dir() {
            if entry.depth() > 0 && layout == Layout::Pyzmq {
                continue; // not read by this layout
            }
            let held: Vec<String> = (secrets.iter())
                .filter(|secret| secret.parent() == Some(path))
                .map(|secret| {
                    secret
                        .file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .into_owned()
                })
                .collect();
            if !held.is_empty() && mode & GROUP_OR_OTHER != 0 {
                problems.push(format!(
                    "{shown} holds secret keys ({}) and is open to group or others (mode \
                     {mode:o}): chmod 700 {shown}, or move the secret files out (servers need \
                     only public certificates)",
                    held.join(", ")
                ));
            } else if held.is_empty() && mode & GROUP_OR_OTHER_WRITE != 0 {
                problems.push(format!(
                    "{shown} is writable by group or others (mode {mode:o}): they could add a \
                     key the authenticator trusts; chmod go-w {shown}"
                ));
            }
        } else if meta.is_file() {
            if secrets.contains(path) {
                if mode & GROUP_OR_OTHER != 0 {
                    problems.push(format!(
                        "secret key {shown} is open to group or others (mode {mode:o}): chmod \
                         600 {shown}, and keep secret keys out of directories of trusted keys"
                    ));
                }
            } else if !passed_over.contains(path) && mode & GROUP_OR_OTHER_WRITE != 0 {
                problems.push(format!(
                    "{shown} is writable by group or others (mode {mode:o}): they could replace \
                     a key the authenticator trusts; chmod go-w {shown}"
                ));
            }
        }
    }
    problems
}
