//! The application's own PKI: its CA, the CSRs admins paste, the client
//! certificates issued from them, and the mTLS gate that checks them.

pub mod ca;
pub mod certificates;
pub mod csr;
pub mod mtls;
pub mod rotation;
