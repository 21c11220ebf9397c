//! The one application of a deployment, its first-run setup (which also
//! creates its CA) and its modes.

use secrecy::{ExposeSecret, SecretString};

use crate::domain::admins::password::{self, Hasher};
use crate::domain::admins::{self, NewAdmin};
use crate::domain::audit::AuditEvent;
use crate::domain::clock::now_ms;
use crate::domain::principal::Principal;
use crate::domain::principal::Role;
use crate::domain::secrets::{self, prefix, MasterKey};
use crate::domain::storage::db::Db;
use crate::domain::{DomainError, DomainResult, Keyward};

/// The regions an application may be in: its code and its name. Clients
/// of the public API point at a regional host; on Keyward the
/// application's region is served by the deployment's own URL.
pub const REGIONS: [(&str, &str); 3] = [("eu", "Europe"), ("sg", "Singapore"), ("us", "United States")];

#[derive(Debug, Clone)]
pub struct Application {
    pub name: String,
    pub region: String,
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
    let row: Option<(String, String, String, i64, i64)> =
        sqlx::query_as("SELECT name, region, api_key, secure_mode, mtls FROM application WHERE id = 1")
            .fetch_optional(executor)
            .await?;
    Ok(row.map(|(name, region, api_key, secure, mtls)| Application {
        name,
        region,
        api_key,
        secure_mode: secure != 0,
        mtls: mtls != 0,
    }))
}

pub(crate) async fn require(db: &Db) -> DomainResult<Application> {
    get(db).await?.ok_or(DomainError::SetupRequired)
}

pub struct Setup {
    pub app_name: String,
    pub region: String,
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

pub fn validate_region(region: &str) -> DomainResult<String> {
    let region = region.trim().to_ascii_lowercase();
    if REGIONS.iter().any(|(code, _)| *code == region) {
        Ok(region)
    } else {
        Err(DomainError::invalid_field(
            "region",
            "The region must be one of eu, sg or us.",
        ))
    }
}

/// Creates the application, its API key and the first super admin in one
/// audited transaction. Fails with a conflict once an application exists.
async fn setup(db: &Db, master: &MasterKey, hasher: &Hasher, setup: Setup) -> DomainResult<()> {
    let name = validate_app_name(&setup.app_name)?;
    let region = validate_region(&setup.region)?;
    let username = admins::validate_username(&setup.admin_username)?;
    password::check_policy(&setup.admin_password)?;
    if get(db).await?.is_some() {
        return Err(DomainError::Conflict("Keyward is already set up.".into()));
    }
    let hash = hasher.hash(setup.admin_password).await?;
    let api_key = secrets::generate(prefix::API_KEY);

    let mut change = db.change().await?;
    sqlx::query(
        "INSERT INTO application (id, name, region, api_key, secure_mode, mtls, created_at) \
         VALUES (1, $1, $2, $3, 0, 0, $4)",
    )
    .bind(&name)
    .bind(&region)
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
                .detail(serde_json::json!({ "region": region, "super_admin": username }))
                .source(setup.source),
        )
        .await
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
                .detail(serde_json::json!({ "secure_mode": secure_after, "mtls": mtls_after }))
                .source(actor.source()),
        )
        .await?;
    Ok(Application {
        secure_mode: secure_after,
        mtls: mtls_after,
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

    /// Is `given` this application's API key? From memory, in constant time.
    pub fn check_api_key(&self, given: Option<&str>) -> Result<(), ApiKeyRefusal> {
        let app = self.views.app().ok_or(ApiKeyRefusal::NotSetUp)?;
        let given = given.ok_or(ApiKeyRefusal::Missing)?;
        if crate::domain::secrets::ct_eq(given.as_bytes(), app.api_key.as_bytes()) {
            Ok(())
        } else {
            Err(ApiKeyRefusal::Invalid)
        }
    }
}
