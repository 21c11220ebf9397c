//! Integration tests: the real server on a random port, a fresh database per
//! test (SQLite by default; PostgreSQL with KEYWARD_TEST_DATABASE=postgres).

mod helpers;

mod abuse_limits;
mod at_rest;
mod audit_export;
mod authorization;
mod ca_rotation;
mod certificates;
mod cli;
mod connections;
mod console_admins;
mod console_audit;
mod console_auth;
mod console_integrations;
mod console_security;
mod console_sessions;
mod csr_der;
mod edge_hardening;
mod hot_paths;
mod http_surface;
mod mtls;
mod observability;
mod openapi;
mod operations;
mod regions;
mod renewal;
mod rest_admin;
mod rest_sessions;
mod setup;
mod social_plus;
mod token_hardening;
mod two_factor;
mod two_instances;
mod webhooks;
