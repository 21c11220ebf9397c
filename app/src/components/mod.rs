//! Small pieces the pages share.

mod copy_button;
mod failure;
mod ready;
mod region_fields;

pub use copy_button::CopyButton;
pub use failure::{FailureView, FormError};
pub use ready::Ready;
pub use region_fields::RegionFields;
