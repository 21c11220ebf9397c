//! Small pieces the pages share.

mod copy_button;
mod failure;
mod ready;

pub use copy_button::CopyButton;
pub use failure::{FailureView, FormError};
pub use ready::Ready;
