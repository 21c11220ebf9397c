//! Small pieces the pages share.

mod copy_button;
mod failure;
mod feedback;
mod menu;
mod passkey;
mod ready;
mod region_fields;

pub use copy_button::CopyButton;
pub use failure::{FailureView, FormError};
pub use feedback::{reset_on_success, say_done, successes, Feedback, LiveRegion};
pub use menu::Menu;
pub use passkey::{AddPasskey, PasskeySignIn};
pub use ready::Ready;
pub use region_fields::RegionFields;
