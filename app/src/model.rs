//! Plain data the console pages receive from server functions.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    Admin,
    SuperAdmin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::SuperAdmin => "super_admin",
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            Role::Admin => "Admin",
            Role::SuperAdmin => "Super Admin",
        }
    }
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "super_admin" | "super-admin" => Some(Role::SuperAdmin),
            _ => None,
        }
    }
}

/// What every console page shows in its frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsoleFrame {
    pub app_name: String,
    pub region: String,
    pub username: String,
    pub role: Role,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    pub region: String,
    pub url: String,
    pub this_deployment: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Integrations {
    pub api_key: String,
    pub region: String,
    pub endpoints: Vec<Endpoint>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdminRow {
    pub username: String,
    pub role: Role,
    pub disabled: bool,
    pub created_at: String,
    pub is_you: bool,
}

/// The regions a new application may be created in.
pub const REGIONS: [(&str, &str); 3] = [("eu", "Europe"), ("sg", "Singapore"), ("us", "United States")];
