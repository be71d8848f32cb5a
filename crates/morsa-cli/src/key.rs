//! `morsa key ...`: the keyring (root secret, data-identity generations) and its SLIP-39
//! shares. Passphrases come from the environment for scripts, else from the terminal.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use age::secrecy::{ExposeSecret, SecretString};
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use morsa_client::ClientConfig;
use morsa_keys::{Keyring, PASSPHRASE_ENV, RootSecret};
use serde_json::json;

use crate::UsageError;

/// Environment variable holding the new passphrase of `morsa key passwd`, for scripts.
const NEW_PASSPHRASE_ENV: &str = "MORSA_NEW_KEY_PASSPHRASE";

/// Environment variable holding the share passphrase of `split`, `recover` and `drill`.
const SHARE_PASSPHRASE_ENV: &str = "MORSA_SHARE_PASSPHRASE";

/// `morsa key`.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create a keyring: a new root secret, encrypted with a passphrase; turns encryption on
    /// in the client configuration.
    Init(KeyArgs),
    /// The keyring's public part: generations, recipients, key-check value (no passphrase).
    Show(KeyArgs),
    /// Change the keyring's passphrase.
    Passwd(KeyArgs),
    /// Add a data-identity generation: new files are encrypted to it, older ones stay readable.
    Rotate(KeyArgs),
    /// Print the age identity (AGE-SECRET-KEY-1...) for the age tool: `age -d -i FILE`.
    AgeIdentity(IdentityArgs),
    /// Print the current age recipient (age1...), to encrypt to with the age tool.
    AgeRecipient(KeyArgs),
    /// Split the root secret into SLIP-39 mnemonic shares, one per line.
    Split(SplitArgs),
    /// Rebuild the keyring from shares (read from stdin, one per line, or asked for).
    Recover(RecoverArgs),
    /// Check, writing nothing, that shares recover the current keyring's root.
    Drill(ShareArgs),
}

/// Where the keyring is.
#[derive(Debug, Args)]
pub struct KeyArgs {
    /// The keyring file (default: the client configuration's `keyring_file`, then
    /// $MORSA_KEYRING, then ~/.config/morsa/keyring.json).
    #[arg(long, value_name = "FILE")]
    pub keyring: Option<PathBuf>,
    /// The client configuration (default: $MORSA_CONFIG, then ~/.config/morsa/client.toml).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print JSON for scripts instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `morsa key age-identity`.
#[derive(Debug, Args)]
pub struct IdentityArgs {
    /// Every generation's identity, oldest first (what reading older files needs).
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub key: KeyArgs,
}

/// `morsa key split`.
#[derive(Debug, Args)]
pub struct SplitArgs {
    /// Shares to make (at most 16).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=16))]
    pub shares: u8,
    /// Shares needed to recover (at least 2 unless there is one share).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=16))]
    pub threshold: u8,
    /// Protect the shares with a passphrase ($MORSA_SHARE_PASSPHRASE, else asked).
    #[arg(long)]
    pub passphrase: bool,
    #[command(flatten)]
    pub key: KeyArgs,
}

/// Commands that read shares.
#[derive(Debug, Args)]
pub struct ShareArgs {
    /// The shares have a passphrase ($MORSA_SHARE_PASSPHRASE, else asked).
    #[arg(long)]
    pub passphrase: bool,
    #[command(flatten)]
    pub key: KeyArgs,
}

/// `morsa key recover`.
#[derive(Debug, Args)]
pub struct RecoverArgs {
    /// Generations the keyring had (`morsa key show` says): new files are encrypted to the
    /// last. Reading does not need it (it also tries the next 32 generations); identities are
    /// derived, so a larger number than needed does no harm.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub generations: u32,
    #[command(flatten)]
    pub shares: ShareArgs,
}

/// Runs `morsa key ...`.
pub fn run(command: &KeyCommand) -> anyhow::Result<()> {
    match command {
        KeyCommand::Init(args) => init(args),
        KeyCommand::Show(args) => show(args),
        KeyCommand::Passwd(args) => passwd(args),
        KeyCommand::Rotate(args) => rotate(args),
        KeyCommand::AgeIdentity(args) => age_identity(args),
        KeyCommand::AgeRecipient(args) => {
            outln!(
                "{}",
                morsa_keys::read_public(&keyring_path(args)?)?.recipients.last().context("no generation")?
            );
            Ok(())
        }
        KeyCommand::Split(args) => split(args),
        KeyCommand::Recover(args) => recover(args),
        KeyCommand::Drill(args) => drill(args),
    }
}

/// The keyring file `args` name.
fn keyring_path(args: &KeyArgs) -> anyhow::Result<PathBuf> {
    if let Some(path) = &args.keyring {
        return Ok(path.clone());
    }
    let config = ClientConfig::locate(args.config.as_deref()).ok().filter(|path| path.exists());
    if let Some(config) = config
        && let Some(path) = ClientConfig::load(&config)?.keyring_file
    {
        return Ok(path);
    }
    morsa_keys::default_path().context("no keyring location: pass --keyring FILE or set MORSA_KEYRING")
}

/// The keyring file the client configuration `config` uses.
pub fn keyring_of(config: &ClientConfig) -> anyhow::Result<PathBuf> {
    config
        .keyring_file
        .clone()
        .or_else(morsa_keys::default_path)
        .context("no keyring location: set keyring_file in the client configuration or MORSA_KEYRING")
}

/// A passphrase from `$env`, else asked on the terminal (twice when `confirm`).
fn passphrase(env: &str, prompt: &str, confirm: bool) -> anyhow::Result<SecretString> {
    if let Ok(value) = std::env::var(env) {
        return Ok(SecretString::from(value));
    }
    let ask = |prompt: &str| {
        rpassword::prompt_password(prompt)
            .with_context(|| format!("cannot ask for the passphrase on the terminal: set {env} instead"))
    };
    let first = ask(prompt)?;
    if first.is_empty() {
        bail!("an empty passphrase is not accepted");
    }
    if confirm && ask("again: ")? != first {
        bail!("the two passphrases differ");
    }
    Ok(SecretString::from(first))
}

/// The keyring's passphrase.
pub fn keyring_passphrase() -> anyhow::Result<SecretString> {
    passphrase(PASSPHRASE_ENV, "keyring passphrase: ", false)
}

fn unlock(path: &Path) -> anyhow::Result<Keyring> {
    Ok(Keyring::unlock(path, &keyring_passphrase()?)?)
}

fn init(args: &KeyArgs) -> anyhow::Result<()> {
    let path = keyring_path(args)?;
    if path.exists() {
        return Err(morsa_keys::KeyringError::Exists(path).into());
    }
    let passphrase = passphrase(PASSPHRASE_ENV, "new keyring passphrase: ", true)?;
    let keyring = Keyring::generate();
    keyring.create(&path, &passphrase, morsa_keys::work_factor_from_env())?;
    let public = keyring.public();
    outln!("created keyring {}", path.display());
    outln!("  recipient: {}", public.recipients[0]);
    outln!("  key check: {}", public.key_check);
    match ClientConfig::locate(args.config.as_deref()).ok().filter(|config| config.exists()) {
        Some(config) => {
            turn_encryption_on(&config)?;
            outln!("encryption is on in {} (encrypt = true)", config.display());
        }
        None => {
            outln!("no client configuration yet: `morsa store --encrypt` encrypts, or set encrypt = true")
        }
    }
    eprintln!(
        "next: `morsa key split --shares 5 --threshold 3` and give each share to a different person; \
         a lost keyring or passphrase without shares loses every encrypted file"
    );
    Ok(())
}

/// Sets `encrypt = true` in the client configuration at `path`.
fn turn_encryption_on(path: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let sets_encrypt = |line: &str| {
        line.trim_start().strip_prefix("encrypt").is_some_and(|rest| rest.trim_start().starts_with('='))
    };
    let mut lines: Vec<&str> = text.lines().filter(|line| !sets_encrypt(line)).collect();
    lines.push("encrypt = true");
    let dir = path.parent().filter(|dir| !dir.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    writeln!(file, "{}", lines.join("\n"))?;
    file.as_file().sync_all()?;
    file.persist(path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn show(args: &KeyArgs) -> anyhow::Result<()> {
    let path = keyring_path(args)?;
    let public = morsa_keys::read_public(&path)?;
    if args.json {
        let value = json!({
            "keyring": path.display().to_string(),
            "generation": public.generation(),
            "key_check": public.key_check,
            "recipients": public.recipients,
        });
        outln!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    outln!("keyring {}", path.display());
    outln!("  key check: {}", public.key_check);
    outln!("  generations: {} (the last is current)", public.generation());
    for (index, recipient) in public.recipients.iter().enumerate() {
        outln!("  generation {}: {recipient}", index + 1);
    }
    Ok(())
}

fn passwd(args: &KeyArgs) -> anyhow::Result<()> {
    let path = keyring_path(args)?;
    let keyring = unlock(&path)?;
    let new = passphrase(NEW_PASSPHRASE_ENV, "new keyring passphrase: ", true)?;
    keyring.save(&path, &new, morsa_keys::work_factor_from_env())?;
    outln!("changed the passphrase of {}", path.display());
    Ok(())
}

fn rotate(args: &KeyArgs) -> anyhow::Result<()> {
    let path = keyring_path(args)?;
    let mut keyring = unlock(&path)?;
    keyring.rotate();
    keyring.save(&path, &keyring_passphrase()?, morsa_keys::work_factor_from_env())?;
    outln!("generation {} is current: {}", keyring.generation(), keyring.identity().to_public());
    eprintln!(
        "the shares stay valid (they hold the root); a keyring rebuilt from them needs \
         `morsa key recover --generations {}`",
        keyring.generation()
    );
    Ok(())
}

fn age_identity(args: &IdentityArgs) -> anyhow::Result<()> {
    let keyring = unlock(&keyring_path(&args.key)?)?;
    let first = if args.all { 1 } else { keyring.generation() };
    for generation in first..=keyring.generation() {
        let identity = keyring.root().identity(generation);
        outln!("# morsa generation {generation}, recipient {}", identity.to_public());
        outln!("{}", identity.to_string().expose_secret());
    }
    Ok(())
}

fn share_passphrase(asked: bool) -> anyhow::Result<Vec<u8>> {
    if std::env::var_os(SHARE_PASSPHRASE_ENV).is_none() && !asked {
        return Ok(Vec::new());
    }
    let secret = passphrase(SHARE_PASSPHRASE_ENV, "share passphrase: ", false)?;
    Ok(secret.expose_secret().as_bytes().to_vec())
}

fn split(args: &SplitArgs) -> anyhow::Result<()> {
    let path = keyring_path(&args.key)?;
    let keyring = unlock(&path)?;
    let shares = keyring
        .root()
        .split(args.threshold, args.shares, &share_passphrase(args.passphrase)?)
        .map_err(|error| UsageError(error.to_string()))?;
    if args.key.json {
        outln!("{}", serde_json::to_string_pretty(&shares)?);
    } else {
        for share in &shares {
            outln!("{share}");
        }
    }
    eprintln!(
        "{} shares, any {} recover the root (key check {}); give each to a different person, \
         and test them with `morsa key drill`",
        args.shares,
        args.threshold,
        keyring.public().key_check
    );
    Ok(())
}

/// Shares from stdin: one per line when piped; asked one by one on a terminal until the
/// threshold the first share names.
fn read_shares() -> anyhow::Result<Vec<String>> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut shares = Vec::new();
        for line in stdin.lock().lines() {
            let line = line.context("reading shares from stdin")?;
            if !line.trim().is_empty() {
                shares.push(line.trim().to_string());
            }
        }
        return Ok(shares);
    }
    let mut shares = Vec::new();
    let mut needed = 1;
    while shares.len() < needed {
        eprint!(
            "share {} of {}: ",
            shares.len() + 1,
            if shares.is_empty() { "?".into() } else { needed.to_string() }
        );
        let mut line = String::new();
        if stdin.lock().read_line(&mut line)? == 0 {
            break;
        }
        let share = line.trim().to_string();
        if shares.is_empty() {
            needed = usize::from(morsa_keys::slip39::Share::from_mnemonic(&share, 1)?.member_threshold);
        }
        shares.push(share);
    }
    Ok(shares)
}

fn recover(args: &RecoverArgs) -> anyhow::Result<()> {
    let path = keyring_path(&args.shares.key)?;
    if path.exists() {
        return Err(morsa_keys::KeyringError::Exists(path).into());
    }
    let shares = read_shares()?;
    let root = RootSecret::recover(&shares, &share_passphrase(args.shares.passphrase)?)
        .context("recovering the root secret from the shares")?;
    let keyring = Keyring::from_root(root, args.generations);
    let passphrase = passphrase(PASSPHRASE_ENV, "new keyring passphrase: ", true)?;
    keyring.create(&path, &passphrase, morsa_keys::work_factor_from_env())?;
    outln!(
        "recovered keyring {} from {} shares (key check {}, {} generation(s))",
        path.display(),
        shares.len(),
        keyring.public().key_check,
        keyring.generation()
    );
    Ok(())
}

fn drill(args: &ShareArgs) -> anyhow::Result<()> {
    let path = keyring_path(&args.key)?;
    let public = morsa_keys::read_public(&path)?;
    let shares = read_shares()?;
    let root = RootSecret::recover(&shares, &share_passphrase(args.passphrase)?)
        .context("drill failed: the shares do not recover a root")?;
    let rebuilt = Keyring::from_root(root, public.generation()).public();
    if rebuilt != public {
        bail!(
            "drill failed: the shares recover another root (key check {}, the keyring's is {})",
            rebuilt.key_check,
            public.key_check
        );
    }
    outln!(
        "drill passed: these {} shares recover the root of {} (key check {}, all {} generation(s))",
        shares.len(),
        path.display(),
        public.key_check,
        public.generation()
    );
    Ok(())
}
