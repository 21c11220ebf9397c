//! Small pieces the pages share.

mod copy_button;
mod failure;

pub use copy_button::CopyButton;
pub use failure::{FailureView, FormError};
