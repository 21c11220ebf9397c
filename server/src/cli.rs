//! The command line (SPEC §9). Passwords come from standard input, never
//! from arguments; every failure exits non-zero with a one-line reason.

use clap::{Parser, Subcommand, ValueEnum};
use secrecy::{ExposeSecret, SecretString};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use app::domain::application::{Setup, SetupProof};
use app::domain::audit::{self, CLI_SOURCE};
use app::domain::audit_export;
use app::domain::secrets::MasterKey;
use app::domain::{DomainError, Keyward, Principal, Role};

use crate::config::{Config, ConfigArgs};
use crate::error::ServerError;
use crate::startup::Opener;
use crate::{startup, telemetry};

#[derive(Parser)]
#[command(
    name = "keyward",
    version,
    about = "Keyward: security console and authentication API"
)]
pub struct Cli {
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the console and the API (the default).
    Serve,
    /// First-run setup without a browser: the application and its first super admin.
    Init {
        #[arg(long)]
        app_name: String,
        /// eu, sg, us, or a custom region's label (with --region-url).
        #[arg(long)]
        region: String,
        /// A custom region's public base URL.
        #[arg(long)]
        region_url: Option<String>,
        #[arg(long)]
        admin_username: String,
        /// Read the super admin's password from standard input.
        #[arg(long)]
        admin_password_stdin: bool,
    },
    /// Manage admin users.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Audit-log tools.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// A consistent copy of the embedded SQLite database, taken while
    /// Keyward serves (PostgreSQL: use pg_dump). Keep the master key too.
    Backup {
        /// The backup file to write (it must not exist).
        #[arg(long)]
        to: PathBuf,
    },
    /// Restore a backup into a new, empty data directory, with the master
    /// key it was made with; checks the audit chain before it is done.
    Restore {
        /// The backup file `keyward backup` wrote.
        #[arg(long)]
        from: PathBuf,
        /// The master key file the backup was made with (copied into the
        /// data directory), unless KEYWARD_MASTER_KEY_FILE names it.
        #[arg(long)]
        master_key: Option<PathBuf>,
    },
    /// Configuration tools.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// The application's region.
    Region {
        #[command(subcommand)]
        command: RegionCommand,
    },
    /// Master-key tools.
    MasterKey {
        #[command(subcommand)]
        command: MasterKeyCommand,
    },
    /// The application's CA (the one that issues mTLS client certificates).
    Ca {
        #[command(subcommand)]
        command: CaCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// Make a new CA that issues from now on; the old one's certificates
    /// keep working for the overlap (audited). Renew them meanwhile.
    Rotate {
        /// How long the old CA's certificates keep working, like 24h or
        /// 30d; 0s stops them at once (for a leaked key).
        #[arg(long)]
        overlap: String,
        /// The new CA's lifetime, like 365d (kept for later rotations);
        /// the application's setting (20 years unless changed) if left out.
        #[arg(long)]
        validity: Option<String>,
        /// With --overlap 0s: stop the active certificates now.
        #[arg(long)]
        stop_active_certificates: bool,
    },
    /// List the CAs: the current one, and those whose overlap runs.
    Show,
}

#[derive(Debug, Subcommand)]
pub enum RegionCommand {
    /// Move the application to another region (audited).
    Set {
        /// eu, sg, us, or a custom region's label (with --url).
        #[arg(long)]
        region: String,
        /// A custom region's public base URL.
        #[arg(long)]
        url: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum MasterKeyCommand {
    /// Re-seal every sealed secret with a new master key, in one audited
    /// transaction; the current key opens nothing afterwards. Then restart
    /// every instance with the new key.
    Rotate {
        /// The new key: this file's, or, if there is no such file, a new
        /// key written there (readable by its owner alone).
        #[arg(long)]
        new_key_file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration, where each value came from
    /// (default, file, environment, flag), secrets redacted; exit non-zero
    /// on any problem.
    Check,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an admin user.
    Create {
        #[arg(long)]
        username: String,
        #[arg(long, value_enum, default_value_t = RoleArg::Admin)]
        role: RoleArg,
        /// Read the password from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Take an admin's second factor away (a lost phone): their
    /// authenticator app and recovery codes are removed and their console
    /// sessions end; they sign in with their password alone and can set
    /// up a new app.
    #[command(name = "reset-2fa")]
    Reset2fa {
        #[arg(long)]
        username: String,
    },
    /// End an admin's sign-in lockouts (every address) at once.
    Unlock {
        #[arg(long)]
        username: String,
    },
    /// Disable an admin: they cannot sign in, their sessions end and their tokens are revoked.
    Disable {
        #[arg(long)]
        username: String,
    },
    /// Enable a disabled admin again.
    Enable {
        #[arg(long)]
        username: String,
    },
    /// Break-glass: give an admin a new token from the host (printed alone on stdout).
    IssueToken {
        #[arg(long)]
        username: String,
    },
    /// Revoke every token of an admin and end their console sessions.
    RevokeToken {
        #[arg(long)]
        username: String,
    },
    /// Set a new password (read from standard input); their sessions end.
    ResetPassword {
        #[arg(long)]
        username: String,
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk the hash chain and report whether it is intact; with `--file`,
    /// check an exported copy instead, for missing and changed events (with
    /// the audit keys the master key opens; no event is read from the
    /// database).
    Verify {
        /// A copy written by `audit export` or `GET /api/v1/audit-events/export`.
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Write the audit log to standard output as JSON Lines, oldest first,
    /// each event with the hashes that chain it (see `audit verify --file`).
    Export {
        /// Start after this event's sequence number (0: from the first).
        #[arg(long, default_value_t = 0)]
        after: i64,
    },
    /// Once, after upgrading from a release whose audit chain was not
    /// keyed: check the old chain, then key it (the server will not start
    /// before).
    Rekey,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    Admin,
    SuperAdmin,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Role {
        match r {
            RoleArg::Admin => Role::Admin,
            RoleArg::SuperAdmin => Role::SuperAdmin,
        }
    }
}

pub async fn run() -> ExitCode {
    use clap::{CommandFactory, FromArgMatches};
    // The matches are kept: `config check` asks them where values came from.
    let parsed = Cli::command()
        .try_get_matches()
        .and_then(|matches| Cli::from_arg_matches(&matches).map(|cli| (cli, matches)));
    let (cli, matches) = match parsed {
        Ok(parsed) => parsed,
        Err(e) => return refuse_arguments(e),
    };
    telemetry::init(cli.config.log_json);
    if let Some(Command::Config {
        command: ConfigCommand::Check,
    }) = &cli.command
    {
        return check_config(&cli.config, &matches);
    }
    match execute(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keyward: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Help and version print as clap renders them; a bad argument or setting
/// is one line (SPEC §9: scripts read it), exit status 2 as clap's.
fn refuse_arguments(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        e.exit();
    }
    eprintln!("keyward: {}", one_line(&e.to_string()));
    ExitCode::from(2)
}

/// The first paragraph of clap's message (which names the argument, e.g.
/// the required ones missing on the following lines), without its usage
/// and tips.
fn one_line(message: &str) -> String {
    let first: Vec<&str> = message.lines().map(str::trim).take_while(|l| !l.is_empty()).collect();
    first.join(" ").trim_start_matches("error: ").to_string()
}

fn read_password(flag_given: bool, flag: &str) -> Result<SecretString, ServerError> {
    if !flag_given {
        return Err(ServerError::Usage(format!(
            "pass the password on standard input with {flag}"
        )));
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(ServerError::io("reading the password from standard input"))?;
    let password = line.trim_end_matches(['\n', '\r']).to_string();
    if password.is_empty() {
        return Err(ServerError::Usage("no password on standard input".into()));
    }
    Ok(SecretString::from(password))
}

/// `keyward config check`: the effective settings as a table on stdout,
/// then each problem on stderr; non-zero if there is any.
fn check_config(args: &ConfigArgs, matches: &clap::ArgMatches) -> ExitCode {
    use clap::CommandFactory;
    let (config, effective) = match Config::explain(args, &Cli::command(), matches) {
        Ok(explained) => explained,
        Err(e) => {
            eprintln!("keyward: {e}");
            return ExitCode::FAILURE;
        }
    };
    let width = effective.iter().map(|e| e.key.len()).max().unwrap_or(0);
    for e in &effective {
        let from = match e.source {
            crate::config::Source::Environment => format!("environment ({})", e.env.as_deref().unwrap_or("?")),
            other => other.as_str().to_string(),
        };
        println!("{:width$}  {}  [{from}]", e.key, e.value);
    }
    if let Some(file) = &args.config {
        println!("(file: {})", file.display());
    }
    let problems = config.problems();
    for p in &problems {
        eprintln!("keyward: {p}");
    }
    if problems.is_empty() {
        println!("configuration OK");
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

async fn execute(cli: Cli) -> Result<(), ServerError> {
    let config = Config::load(&cli.config)?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config).await,
        // Answered in `run`, before anything is opened.
        Command::Config { .. } => Ok(()),
        Command::Backup { to } => backup(&config, &to).await,
        Command::MasterKey {
            command: MasterKeyCommand::Rotate { new_key_file },
        } => rotate_master_key(&config, &new_key_file).await,
        Command::Restore { from, master_key } => restore(&config, &from, master_key.as_deref()).await,
        Command::Migrate => {
            startup::open_database(&config, Opener::Tool).await?.db.close().await;
            println!("migrations applied");
            Ok(())
        }
        Command::Region {
            command: RegionCommand::Set { region, url },
        } => {
            let kw = startup::open_domain(&config, Opener::Tool).await?;
            let result = kw.set_region(&Principal::operator(), &region, url.as_deref()).await;
            kw.stop().await;
            let app = result?;
            match app.region_url {
                Some(url) => println!("region: {} (custom, {url})", app.region),
                None => println!("region: {}", app.region),
            }
            Ok(())
        }
        Command::Init {
            app_name,
            region,
            region_url,
            admin_username,
            admin_password_stdin,
        } => {
            let password = read_password(admin_password_stdin, "--admin-password-stdin")?;
            let kw = startup::open_domain(&config, Opener::Server).await?;
            let setup = Setup {
                app_name,
                region,
                region_url,
                admin_username,
                admin_password: password,
                source: Some(CLI_SOURCE.into()),
            };
            let result = kw.setup(SetupProof::Operator, setup).await;
            kw.stop().await;
            result?;
            println!("application created");
            Ok(())
        }
        Command::Admin { command } => {
            let kw = startup::open_domain(&config, Opener::Tool).await?;
            let result = admin(&kw, command).await;
            kw.stop().await;
            result
        }
        Command::Ca { command } => {
            let kw = startup::open_domain(&config, Opener::Tool).await?;
            let result = ca(&kw, command).await;
            kw.stop().await;
            result
        }
        Command::Audit {
            command: AuditCommand::Rekey,
        } => {
            let db = startup::open_database(&config, Opener::Tool).await?.db;
            let result = audit::rekey(&db).await;
            db.close().await;
            let done = result?;
            match done.previous_break {
                None => println!("audit chain keyed: {} events, the old chain was intact", done.events),
                Some(b) => println!(
                    "audit chain keyed: {} events; WARNING: the old chain was broken {b} (recorded in the log)",
                    done.events
                ),
            }
            Ok(())
        }
        Command::Audit {
            command: AuditCommand::Verify { file: Some(file) },
        } => {
            let db = startup::open_database(&config, Opener::Tool).await?.db;
            let copy = std::fs::File::open(&file).map_err(ServerError::io(format!("reading {}", file.display())));
            let result = copy.map(|f| audit_export::check_copy(&db, std::io::BufReader::new(f)));
            db.close().await;
            let checked = result??;
            println!(
                "exported audit log intact: {} events ({} to {})",
                checked.events, checked.first, checked.last
            );
            Ok(())
        }
        Command::Audit {
            command: AuditCommand::Export { after },
        } => {
            let kw = startup::open_domain(&config, Opener::Tool).await?;
            let result = export_audit(&kw, after).await;
            kw.stop().await;
            result
        }
        Command::Audit {
            command: AuditCommand::Verify { file: None },
        } => {
            let db = startup::open_database(&config, Opener::Tool).await?.db;
            let result = audit::verify(&db).await;
            db.close().await;
            let n = result?;
            println!("audit chain intact: {n} events");
            Ok(())
        }
    }
}

/// `keyward master-key rotate --new-key-file F`. The current key is checked
/// (by opening the database) before a new key is made, and the new key is
/// on disk before anything is sealed with it; a key file made here is
/// removed again if the rotation fails.
async fn rotate_master_key(config: &Config, new_key_file: &Path) -> Result<(), ServerError> {
    let kw = startup::open_domain(config, Opener::Tool).await?;
    let shown = new_key_file.display();
    let new_key = match std::fs::read_to_string(new_key_file) {
        Ok(text) => MasterKey::from_encoded(&text)
            .map(|key| (key, false))
            .map_err(|e| ServerError::Usage(format!("--new-key-file {shown}: the key {e}"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let (key, encoded) = MasterKey::generate();
            crate::files::write_private(new_key_file, encoded.expose_secret()).map(|()| (key, true))
        }
        Err(e) => Err(ServerError::Usage(format!("--new-key-file {shown}: {e}"))),
    };
    let (new_key, made) = match new_key {
        Ok(found) => found,
        Err(e) => {
            kw.stop().await;
            return Err(e);
        }
    };
    let result = kw.rotate_master_key(&Principal::operator(), &new_key).await;
    kw.stop().await;
    let done = match result {
        Ok(done) => done,
        Err(e) => {
            // A failed commit may still have committed (the connection
            // dropped after COMMIT was sent): the key made here is removed
            // only while the old key provably still opens the database.
            if made {
                match startup::open_database(config, Opener::Tool).await {
                    Ok(opened) => {
                        opened.db.close().await;
                        let _ = std::fs::remove_file(new_key_file);
                    }
                    Err(_) => eprintln!(
                        "keyward: the old key no longer opens the database: keep {shown}, it may be the key now"
                    ),
                }
            }
            return Err(e.into());
        }
    };
    let old = startup::master_key_path(config);
    println!(
        "master key rotated: every sealed secret is now sealed with the key in {shown} \
         ({} admin tokens, {} signing keys, {} CA keys, {} authenticator-app secrets, {} webhook secrets, \
         the audit and sign-in keys, {} secrets waiting in console sessions); new audit events are keyed under \
         epoch {}.",
        done.admin_tokens,
        done.signing_keys,
        done.ca_keys,
        done.totp_secrets,
        done.webhook_secrets,
        done.one_time_reveals,
        done.audit_epoch
    );
    println!(
        "The old key ({}) no longer opens this database. Start every instance with \
         KEYWARD_MASTER_KEY_FILE={shown} (or put that file in the old one's place); instances still running \
         refuse changes until restarted. Keep the new key with your backups: backups taken before now need \
         the old one. If the old key leaked together with a copy of the database, also replace the secrets \
         themselves (admin tokens, server keys, certificates): re-sealing does not change them.",
        old.display()
    );
    Ok(())
}

/// The operator's admin commands: each one operation of the domain, as
/// the operator (a super admin's reach, audited as from the CLI).
async fn admin(kw: &Keyward, command: AdminCommand) -> Result<(), ServerError> {
    let operator = Principal::operator();
    match command {
        AdminCommand::IssueToken { username } => {
            let issued = kw.issue_admin_token(&operator, &username).await?;
            println!("{}", issued.token.expose_secret());
        }
        AdminCommand::RevokeToken { username } => {
            kw.revoke_admin_token(&operator, &username).await?;
            println!("tokens revoked; the admin's console sessions have ended");
        }
        AdminCommand::Create {
            username,
            role,
            password_stdin,
        } => {
            let password = read_password(password_stdin, "--password-stdin")?;
            kw.create_admin(&operator, &username, password, Some(role.into()))
                .await?;
            println!("admin created");
        }
        AdminCommand::Reset2fa { username } => {
            kw.reset_second_factor(&operator, &username).await?;
            println!("second factor removed: {username} signs in with their password alone, and their sessions ended");
        }
        AdminCommand::Unlock { username } => {
            kw.unlock_admin(&operator, &username).await?;
            println!("admin unlocked");
        }
        AdminCommand::Disable { username } => {
            kw.set_admin_disabled(&operator, &username, true).await?;
            println!("admin disabled");
        }
        AdminCommand::Enable { username } => {
            kw.set_admin_disabled(&operator, &username, false).await?;
            println!("admin enabled");
        }
        AdminCommand::ResetPassword {
            username,
            password_stdin,
        } => {
            let password = read_password(password_stdin, "--password-stdin")?;
            kw.reset_admin_password(&operator, &username, password).await?;
            println!("password reset");
        }
    }
    Ok(())
}

/// `keyward ca …`, as the operator.
async fn ca(kw: &Keyward, command: CaCommand) -> Result<(), ServerError> {
    use app::domain::pki::rotation::{names, Rotation};
    let operator = Principal::operator();
    match command {
        CaCommand::Rotate {
            overlap,
            validity,
            stop_active_certificates,
        } => {
            // 0s (no overlap) is a choice here, where durations elsewhere
            // must be positive.
            let zero = matches!(overlap.trim(), "0" | "0s" | "0m" | "0h" | "0d");
            let overlap = if zero {
                std::time::Duration::ZERO
            } else {
                crate::config::parse_duration(&overlap).map_err(|e| ServerError::Usage(format!("--overlap: {e}")))?
            };
            let validity_days = validity
                .map(|v| {
                    let d = crate::config::parse_duration(&v)
                        .map_err(|e| ServerError::Usage(format!("--validity: {e}")))?;
                    if d.as_secs() % 86_400 != 0 {
                        return Err(ServerError::Usage(
                            "--validity: a CA lasts whole days, like 365d".into(),
                        ));
                    }
                    Ok(i64::try_from(d.as_secs() / 86_400).unwrap_or(i64::MAX))
                })
                .transpose()?;
            let overlap_secs = i64::try_from(overlap.as_secs()).unwrap_or(i64::MAX);
            let rotation = Rotation {
                overlap_secs,
                validity_days,
                stop_active_certificates,
            };
            let rotated = match kw.rotate_ca(&operator, rotation).await {
                Err(DomainError::Conflict(message)) if overlap_secs == 0 => {
                    return Err(ServerError::Usage(format!(
                        "{message} (from here: run again with --stop-active-certificates)"
                    )));
                }
                other => other?,
            };
            println!(
                "new CA {} ({}), valid until {}",
                rotated.ca.id,
                rotated.ca.subject,
                app::domain::clock::display(rotated.ca.not_after)
            );
            println!("fingerprint (SHA-256): {}", rotated.ca.fingerprint);
            if overlap_secs == 0 {
                println!("the old CA is retired: its certificates are refused from the next request");
                if !rotated.stopping.is_empty() {
                    eprintln!(
                        "WARNING: these certificates stopped working: {}. Renew them (Settings > Security) and install the new ones.",
                        names(&rotated.stopping)
                    );
                }
            } else {
                println!(
                    "the old CA's certificates work until {}",
                    app::domain::clock::display(rotated.old_retires_at)
                );
                if !rotated.to_renew.is_empty() {
                    println!("renew these before then: {}", names(&rotated.to_renew));
                }
            }
            println!(
                "clients and proxies that check certificates should fetch the CA bundle again: GET /api/v1/ca.pem"
            );
        }
        CaCommand::Show => {
            let overview = kw.ca_overview(&operator).await?;
            let now = app::domain::clock::now_ms();
            for ca in &overview.authorities {
                let state = match ca.retires_at {
                    None => "current".to_owned(),
                    Some(at) if at > now => format!("retiring: trusted until {}", app::domain::clock::display(at)),
                    Some(_) => "retired".to_owned(),
                };
                println!(
                    "CA {}\t{}\t{}\tvalid until {}\t{}",
                    ca.id,
                    state,
                    ca.subject,
                    app::domain::clock::display(ca.not_after),
                    ca.fingerprint
                );
            }
            println!("the next CA lasts {} days", overview.validity_days);
        }
    }
    Ok(())
}

/// `keyward backup --to FILE`. Reads the database as it is: no
/// migration (a newer binary must not upgrade the schema under a running
/// older server), no file created where none is.
async fn backup(config: &Config, to: &Path) -> Result<(), ServerError> {
    let key = startup::master_key_path(config);
    let url = config.database_url.expose_secret();
    let Some(file) = startup::sqlite_file(url) else {
        if url.starts_with("sqlite:") {
            return Err(ServerError::Usage("an in-memory database cannot be backed up".into()));
        }
        return Err(ServerError::Usage(format!(
            "on PostgreSQL, back up with pg_dump (e.g. pg_dump -Fc -f keyward.dump \"$DATABASE_URL\"), and keep the \
             master key file ({}) too, stored apart: `keyward backup` copies the embedded SQLite database",
            key.display()
        )));
    };
    if !file.is_file() {
        return Err(ServerError::Usage(format!(
            "DATABASE_URL (--database-url): no database at {}",
            file.display()
        )));
    }
    let Some(to_text) = to.to_str() else {
        return Err(ServerError::Usage("--to: the path must be UTF-8".into()));
    };
    // Made here, empty and 0600: the copy holds sealed secrets and hashes.
    crate::files::create_private(to).map_err(|e| ServerError::Usage(format!("--to {}: {e}", to.display())))?;
    let copied = async {
        let db = app::domain::storage::db::Db::connect(url).await.map_err(|e| {
            ServerError::Config(format!("DATABASE_URL (--database-url): cannot open the database: {e}"))
        })?;
        let result = db.backup_into(to_text).await;
        db.close().await;
        result?;
        // VACUUM INTO does not sync what it wrote.
        std::fs::File::open(to)
            .and_then(|f| f.sync_all())
            .map_err(ServerError::io(format!("syncing {}", to.display())))
    }
    .await;
    if let Err(e) = copied {
        let _ = std::fs::remove_file(to);
        return Err(e);
    }
    println!("backup written to {}", to.display());
    println!(
        "keep the master key ({}) too, stored apart from the backup: the backup cannot be read without it",
        key.display()
    );
    Ok(())
}

/// `keyward restore --from FILE [--master-key KEY]`: into an empty data
/// directory only; what it wrote is removed again if the check fails.
async fn restore(config: &Config, from: &Path, master_key: Option<&Path>) -> Result<(), ServerError> {
    let Some(target) = startup::sqlite_file(config.database_url.expose_secret()) else {
        return Err(ServerError::Usage(
            "on PostgreSQL, restore with pg_restore into an empty database, and give Keyward the master key \
             the dump was made with"
                .into(),
        ));
    };
    let dir = &config.data_dir;
    let occupied = match std::fs::read_dir(dir) {
        Ok(mut entries) => entries.next().is_some(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => {
            return Err(ServerError::Usage(format!(
                "KEYWARD_DATA_DIR (--data-dir) {}: {e}",
                dir.display()
            )))
        }
    };
    if occupied {
        return Err(ServerError::Usage(format!(
            "KEYWARD_DATA_DIR (--data-dir) {} is not empty: restore into a new, empty data directory",
            dir.display()
        )));
    }
    // SQLite's companions too: an old log beside the new file would be
    // replayed into it.
    let companions = ["-wal", "-shm", "-journal"].map(|suffix| {
        let mut name = target.clone().into_os_string();
        name.push(suffix);
        PathBuf::from(name)
    });
    if let Some(taken) = std::iter::once(&target).chain(&companions).find(|p| p.exists()) {
        return Err(ServerError::Usage(format!(
            "DATABASE_URL (--database-url) {} exists: restore into a new database file",
            taken.display()
        )));
    }
    let key_copy = match (&config.master_key_file, master_key) {
        (Some(_), Some(_)) => {
            return Err(ServerError::Usage(
                "give the master key once: --master-key or KEYWARD_MASTER_KEY_FILE".into(),
            ))
        }
        (Some(_), None) => None,
        (None, Some(key)) => Some(key),
        (None, None) => {
            return Err(ServerError::Usage(
                "name the master key the backup was made with: --master-key FILE".into(),
            ))
        }
    };
    let mut source = std::fs::File::open(from).map_err(ServerError::io(format!("--from {}", from.display())))?;
    startup::ensure_dir(dir)?;
    let mut written = Vec::new();
    let copied = (|| -> Result<(), ServerError> {
        let mut copy = |src: &mut std::fs::File, dest: &Path| -> Result<(), ServerError> {
            let mut out =
                crate::files::create_private(dest).map_err(ServerError::io(format!("creating {}", dest.display())))?;
            written.push(dest.to_path_buf());
            std::io::copy(src, &mut out)
                .and_then(|_| out.sync_all())
                .map(|_| ())
                .map_err(ServerError::io(format!("writing {}", dest.display())))
        };
        copy(&mut source, &target)?;
        if let Some(key) = key_copy {
            let mut key_file =
                std::fs::File::open(key).map_err(ServerError::io(format!("--master-key {}", key.display())))?;
            copy(&mut key_file, &dir.join("master.key"))?;
        }
        Ok(())
    })();
    let checked = match copied {
        Ok(()) => check_restored(config).await,
        Err(e) => Err(e),
    };
    match checked {
        Ok(events) => {
            println!(
                "restored into {}: the audit chain is intact ({events} events)",
                dir.display()
            );
            Ok(())
        }
        Err(e) => {
            // Only what this restore made: none of these existed before.
            for file in written.iter().rev().chain(&companions) {
                let _ = std::fs::remove_file(file);
            }
            Err(e)
        }
    }
}

/// A restored database opens with its key (the audit chain's key check
/// refuses another) and its audit chain verifies.
async fn check_restored(config: &Config) -> Result<u64, ServerError> {
    let db = startup::open_database(config, Opener::Tool).await?.db;
    let verified = audit::verify(&db).await;
    db.close().await;
    Ok(verified?)
}

async fn serve(config: Config) -> Result<(), ServerError> {
    let running = startup::build(config).await?;
    tracing::info!(addr = %running.http_addr, "Keyward is serving the console and API");
    println!("Keyward is listening on {}", running.public_url);
    println!("HTTPS (for mTLS clients) on https://{}/", running.https_addr);
    if let Some(url) = running.setup_url() {
        // Printed, not logged: the one place this token is meant to appear.
        println!("First-run setup is open. Create your application at:\n  {url}");
    }
    shutdown_signal().await;
    tracing::info!("shutting down: finishing requests in flight");
    running.shutdown().await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

/// Writes the log after event `after` to standard output, a page at a time.
async fn export_audit(kw: &Keyward, mut after: i64) -> Result<(), ServerError> {
    use std::io::Write;
    let operator = Principal::operator();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    loop {
        let page = kw.audit_export(&operator, after, audit_export::EXPORT_PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        audit_export::write_lines(&page, &mut out).map_err(ServerError::io("writing the export"))?;
    }
    out.flush().map_err(ServerError::io("writing the export"))?;
    Ok(())
}
