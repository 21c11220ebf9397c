//! The one application of a deployment, its first-run setup (which also
//! creates its CA) and its modes.

use secrecy::{ExposeSecret, SecretString};

use crate::domain::admins::password::{self, Hasher};
use crate::domain::admins::{self, NewAdmin};
use crate::domain::audit::AuditEvent;
use crate::domain::clock::now_ms;
use crate::domain::metrics::Verdict;
use crate::domain::principal::Principal;
use crate::domain::principal::Role;
use crate::domain::secrets::{self, prefix, MasterKey};
use crate::domain::storage::db::Db;
use crate::domain::{DomainError, DomainResult, Keyward};

/// The built-in regions: their code and name. Clients of the public API
/// point at a regional host; on Keyward the application's region is
/// served by the deployment's own URL. An application may instead be in a
/// custom region: a label of its own with its own public base URL.
pub const REGIONS: [(&str, &str); 3] = [("eu", "Europe"), ("sg", "Singapore"), ("us", "United States")];

/// The longest custom region label.
pub const MAX_REGION_LABEL: usize = 32;

#[derive(Debug, Clone)]
pub struct Application {
    pub name: String,
    /// A built-in region's code, or a custom region's label.
    pub region: String,
    /// A custom region's public base URL (`None` for a built-in region).
    pub region_url: Option<String>,
    /// Public by design: it identifies the application to client SDKs.
    pub api_key: String,
    pub secure_mode: bool,
    pub mtls: bool,
}

pub(crate) async fn get(db: &Db) -> DomainResult<Option<Application>> {
    fetch(db.read()).await
}

/// Reads the application through any executor: a pool, or a change's
/// connection when the read must happen under its lock.
async fn fetch<'e>(executor: impl sqlx::Executor<'e, Database = sqlx::Any>) -> DomainResult<Option<Application>> {
    let row: Option<(String, String, Option<String>, String, i64, i64)> =
        sqlx::query_as("SELECT name, region, region_url, api_key, secure_mode, mtls FROM application WHERE id = 1")
            .fetch_optional(executor)
            .await?;
    Ok(
        row.map(|(name, region, region_url, api_key, secure, mtls)| Application {
            name,
            region,
            region_url,
            api_key,
            secure_mode: secure != 0,
            mtls: mtls != 0,
        }),
    )
}

pub(crate) async fn require(db: &Db) -> DomainResult<Application> {
    get(db).await?.ok_or(DomainError::SetupRequired)
}

pub struct Setup {
    pub app_name: String,
    /// A built-in region's code, or a custom region's label (with `region_url`).
    pub region: String,
    pub region_url: Option<String>,
    pub admin_username: String,
    pub admin_password: SecretString,
    pub source: Option<String>,
}

pub fn validate_app_name(name: &str) -> DomainResult<String> {
    let name = name.trim();
    let n = name.chars().count();
    if n == 0 || n > 100 {
        return Err(DomainError::invalid_field(
            "app_name",
            "The application name must be 1 to 100 characters.",
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(DomainError::invalid_field(
            "app_name",
            "The application name cannot contain control characters.",
        ));
    }
    Ok(name.to_string())
}

/// A region, checked: a built-in code (eu, sg, us) without a URL, or a
/// custom label (lower-case letters, digits and hyphens) with the public
/// base URL its clients use (http or https, a host, no credentials, query
/// or fragment; kept with a trailing slash).
pub fn validate_region(region: &str, url: Option<&str>) -> DomainResult<(String, Option<String>)> {
    let label = region.trim().to_ascii_lowercase();
    let url = url.map(str::trim).filter(|u| !u.is_empty());
    if REGIONS.iter().any(|(code, _)| *code == label) {
        return match url {
            None => Ok((label, None)),
            Some(_) => Err(DomainError::invalid_field(
                "region_url",
                "A built-in region (eu, sg, us) has no URL of its own: leave the URL empty.",
            )),
        };
    }
    let label_ok = (1..=MAX_REGION_LABEL).contains(&label.len())
        && label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-');
    if !label_ok {
        return Err(DomainError::invalid_field(
            "region",
            "The region must be eu, sg or us, or a custom label of 1 to 32 letters, digits and hyphens.",
        ));
    }
    let Some(url) = url else {
        return Err(DomainError::invalid_field(
            "region_url",
            "A custom region needs the public base URL its clients use (https://…).",
        ));
    };
    Ok((label, Some(validate_region_url(url)?)))
}

fn validate_region_url(text: &str) -> DomainResult<String> {
    let bad = |why: &str| DomainError::invalid_field("region_url", format!("The region's URL {why}."));
    if text.len() > 200 {
        return Err(bad("is longer than 200 characters"));
    }
    let mut url = url::Url::parse(text).map_err(|_| bad("is not a URL (https://…)"))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(bad("must start with https:// (or http://)"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("must name a host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must not hold a user name or password"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("must not have a query or fragment"));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url.to_string())
}

/// Creates the application, its API key and the first super admin in one
/// audited transaction. Fails with a conflict once an application exists.
async fn setup(db: &Db, master: &MasterKey, hasher: &Hasher, setup: Setup) -> DomainResult<()> {
    let name = validate_app_name(&setup.app_name)?;
    let (region, region_url) = validate_region(&setup.region, setup.region_url.as_deref())?;
    let username = admins::validate_username(&setup.admin_username)?;
    password::check_policy(&setup.admin_password)?;
    if get(db).await?.is_some() {
        return Err(DomainError::Conflict("Keyward is already set up.".into()));
    }
    let hash = hasher.hash(setup.admin_password).await?;
    let api_key = secrets::generate(prefix::API_KEY);

    let mut change = db.change().await?;
    sqlx::query(
        "INSERT INTO application (id, name, region, region_url, api_key, secure_mode, mtls, created_at) \
         VALUES (1, $1, $2, $3, $4, 0, 0, $5)",
    )
    .bind(&name)
    .bind(&region)
    .bind(&region_url)
    .bind(api_key.expose_secret())
    .bind(now_ms())
    .execute(change.conn())
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() || d.message().contains("PRIMARY") => {
            DomainError::Conflict("Keyward is already set up.".into())
        }
        _ => e.into(),
    })?;
    crate::domain::pki::ca::create(change.conn(), master, &name).await?;
    admins::insert(
        change.conn(),
        &NewAdmin {
            username: username.clone(),
            password_hash: hash,
            role: Role::SuperAdmin,
        },
    )
    .await?;
    change
        .commit(
            AuditEvent::new(username.clone(), "application.setup", name.clone())
                .detail(serde_json::json!({ "region": region, "region_url": region_url, "super_admin": username }))
                .source(setup.source),
        )
        .await
}

/// What a settings change changed, as `{"setting": {"from": …, "to": …}}`
/// (the audit log shows what changed, not the whole new state).
fn changes(settings: &[(&str, bool, bool)]) -> serde_json::Value {
    settings
        .iter()
        .filter(|(_, from, to)| from != to)
        .map(|(name, from, to)| (name.to_string(), serde_json::json!({ "from": from, "to": to })))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// Turns secure mode and mTLS on or off, with the same rules everywhere:
/// mTLS needs secure mode and an active certificate; secure mode cannot be
/// turned off under mTLS.
async fn set_modes(
    db: &Db,
    actor: &crate::domain::principal::Principal,
    secure: Option<bool>,
    mtls: Option<bool>,
) -> DomainResult<Application> {
    let mut change = db.change_as(actor).await?;
    // Read under the change's lock, so two updates cannot interleave.
    let app = fetch(change.conn()).await?.ok_or(DomainError::SetupRequired)?;
    let secure_after = secure.unwrap_or(app.secure_mode);
    let mtls_after = mtls.unwrap_or(app.mtls);
    if mtls_after && !secure_after {
        return Err(DomainError::Conflict(if app.mtls {
            "Turn mTLS off before turning secure mode off.".into()
        } else {
            "mTLS can be turned on only while secure mode is on: turn secure mode on first.".into()
        }));
    }
    if mtls_after && !app.mtls && crate::domain::pki::certificates::active_count(change.conn()).await? == 0 {
        return Err(DomainError::Conflict(
            "mTLS can be turned on only while at least one active certificate exists: create one first.".into(),
        ));
    }
    if secure_after == app.secure_mode && mtls_after == app.mtls {
        return Ok(app);
    }
    sqlx::query("UPDATE application SET secure_mode = $1, mtls = $2 WHERE id = 1")
        .bind(i64::from(secure_after))
        .bind(i64::from(mtls_after))
        .execute(change.conn())
        .await?;
    change
        .commit(
            AuditEvent::new(&actor.name, "settings.update", "application")
                .detail(changes(&[
                    ("secure_mode", app.secure_mode, secure_after),
                    ("mtls", app.mtls, mtls_after),
                ]))
                .source(actor.source()),
        )
        .await?;
    Ok(Application {
        secure_mode: secure_after,
        mtls: mtls_after,
        ..app
    })
}

/// Moves the application to another region (a super admin's, audited).
async fn set_region(db: &Db, actor: &Principal, region: &str, url: Option<&str>) -> DomainResult<Application> {
    if !actor.is_super_admin() {
        // Refused, and on record, as a refused token revoke is.
        db.change_as(actor)
            .await?
            .commit(
                AuditEvent::new(&actor.name, "settings.region_change_refused", "application")
                    .detail(serde_json::json!({ "reason": "not permitted" }))
                    .source(actor.source()),
            )
            .await?;
        return Err(DomainError::Forbidden);
    }
    let (region, region_url) = validate_region(region, url)?;
    let mut change = db.change_as(actor).await?;
    let app = fetch(change.conn()).await?.ok_or(DomainError::SetupRequired)?;
    if app.region == region && app.region_url == region_url {
        return Ok(app);
    }
    sqlx::query("UPDATE application SET region = $1, region_url = $2 WHERE id = 1")
        .bind(&region)
        .bind(&region_url)
        .execute(change.conn())
        .await?;
    change
        .commit(
            AuditEvent::new(&actor.name, "settings.region_change", "application")
                .detail(serde_json::json!({
                    "from": { "region": app.region, "region_url": app.region_url },
                    "to": { "region": region, "region_url": region_url },
                }))
                .source(actor.source()),
        )
        .await?;
    Ok(Application {
        region,
        region_url,
        ..app
    })
}

/// How a first-run setup shows it may run.
#[derive(Clone, Copy)]
pub enum SetupProof<'a> {
    /// The one-time token `keyward serve` printed (the console's setup page).
    Token(&'a str),
    /// The host operator (`keyward init`).
    Operator,
}

/// Why a presented API key is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiKeyRefusal {
    NotSetUp,
    Missing,
    Invalid,
}

impl Keyward {
    /// Is there an application yet? (Before, only setup can run.)
    pub async fn is_set_up(&self) -> DomainResult<bool> {
        Ok(get(&self.db).await?.is_some())
    }

    /// Does `token` open setup now? False once setup is done (the token
    /// is burned then). Lets the console keep a refused setup form's
    /// fields for the one who holds the link, and for no one else.
    pub fn holds_setup_link(&self, token: &str) -> bool {
        self.setup_token_matches(token.trim())
    }

    /// Creates the application and its first super admin; works once.
    pub async fn setup(&self, proof: SetupProof<'_>, form: Setup) -> DomainResult<()> {
        if self.is_set_up().await? {
            return Err(DomainError::Conflict(
                "Keyward is already set up. Sign in instead.".into(),
            ));
        }
        if let SetupProof::Token(token) = proof {
            if !self.setup_token_matches(token.trim()) {
                return Err(DomainError::invalid_field(
                    "token",
                    "This setup link is not valid. Use the link that `keyward serve` printed at start.",
                ));
            }
        }
        setup(&self.db, &self.master_key, &self.hasher, form).await?;
        self.close_setup();
        self.refresh().await
    }

    /// The application's settings as an admin sees them.
    pub async fn application(&self, _who: &Principal) -> DomainResult<Application> {
        require(&self.db).await
    }

    /// Turns secure mode and mTLS on or off (`None` leaves one as it is).
    pub async fn set_modes(
        &self,
        who: &Principal,
        secure_mode: Option<bool>,
        mtls: Option<bool>,
    ) -> DomainResult<Application> {
        let app = set_modes(&self.db, who, secure_mode, mtls).await?;
        self.refresh().await?;
        Ok(app)
    }

    /// Moves the application to a built-in region, or a custom one with
    /// its public base URL. Super admins only.
    pub async fn set_region(&self, who: &Principal, region: &str, url: Option<&str>) -> DomainResult<Application> {
        let app = set_region(&self.db, who, region, url).await?;
        self.refresh().await?;
        Ok(app)
    }

    /// Is `given` this application's API key? From memory, in constant time.
    pub fn check_api_key(&self, given: Option<&str>) -> Result<(), ApiKeyRefusal> {
        let app = self.views.app().ok_or(ApiKeyRefusal::NotSetUp)?;
        let given = given.ok_or(ApiKeyRefusal::Missing)?;
        let good = crate::domain::secrets::ct_eq(given.as_bytes(), app.api_key.as_bytes());
        self.metrics.verification(
            crate::domain::metrics::TokenKind::ApiKey,
            if good { Verdict::Ok } else { Verdict::Invalid },
        );
        if good {
            Ok(())
        } else {
            Err(ApiKeyRefusal::Invalid)
        }
    }
}
