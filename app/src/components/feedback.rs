//! What the console says after an action: one live region per page (in the
//! console frame) that reads what the latest action did, and has the focus
//! afterwards so a keyboard user is not dropped to the top of the page.
//!
//! The sentence is written once, by the server function (`Done`). With
//! JavaScript it comes back as the action's value; without, a form post
//! cannot carry it through the redirect, so it waits in the session for
//! the page the form lands on (like a secret shown once, see `reveal`).

use leptos::prelude::*;
use leptos::server_fn::ServerFn;

use crate::error::AppError;
use crate::model::Done;

/// The console's live region, shared by the frame and its pages.
#[derive(Clone, Copy)]
pub struct Feedback {
    message: RwSignal<Option<String>>,
    /// Bumped to move the focus to the message once it is on the page.
    focus: RwSignal<u64>,
}

impl Feedback {
    pub fn provide() -> Self {
        let feedback = Self {
            message: RwSignal::new(None),
            focus: RwSignal::new(0),
        };
        provide_context(feedback);
        feedback
    }

    /// Says `message` in the live region and moves the focus there.
    pub fn say(self, message: String) {
        self.message.set(Some(message));
        self.focus.update(|n| *n += 1);
    }

    pub fn clear(self) {
        self.message.set(None);
    }
}

/// Says what `action` did each time it succeeds.
pub fn say_done<S>(action: ServerAction<S>)
where
    S: ServerFn<Output = Done, Error = AppError> + Clone + Send + Sync + 'static,
{
    let Some(feedback) = use_context::<Feedback>() else {
        return;
    };
    Effect::new(move |_| {
        if let Some(Ok(done)) = action.value().get() {
            feedback.say(done.message);
        }
    });
}

/// How many times `action` has succeeded. A page's data reloads after a
/// success, not after a refusal: that would redraw, and so empty, the form
/// the user is correcting.
pub fn successes<S>(action: ServerAction<S>) -> ReadSignal<u64>
where
    S: ServerFn<Error = AppError> + Clone + Send + Sync + 'static,
    S::Output: Clone + Send + Sync + 'static,
{
    let (count, set_count) = signal(0u64);
    Effect::new(move |_| {
        if matches!(action.value().get(), Some(Ok(_))) {
            set_count.update(|n| *n += 1);
        }
    });
    count
}

/// The live region. `at_load` is what a form post without JavaScript did
/// (its page load is where it is said).
#[component]
pub fn LiveRegion(feedback: Feedback, at_load: Option<String>) -> impl IntoView {
    if at_load.is_some() {
        feedback.message.set(at_load);
    }
    let node = NodeRef::<leptos::html::P>::new();
    Effect::new(move |_| {
        if feedback.focus.get() > 0 {
            if let Some(p) = node.get_untracked() {
                let _ = p.focus();
            }
        }
    });
    // A new page starts silent (the first run only notes where it is).
    let path = leptos_router::hooks::use_location().pathname;
    Effect::new(move |before: Option<String>| {
        let now = path.get();
        if before.is_some_and(|b| b != now) {
            feedback.clear();
        }
        now
    });
    view! {
        <div class="live" role="status" aria-live="polite">
            <p class="done" tabindex="-1" data-testid="done" node_ref=node>{move || feedback.message.get()}</p>
        </div>
    }
}

/// Empties `form` each time `action` succeeds (a refusal keeps what was
/// typed, so it can be corrected).
pub fn reset_on_success<S>(action: ServerAction<S>, form: NodeRef<leptos::html::Form>)
where
    S: ServerFn<Error = AppError> + Clone + Send + Sync + 'static,
    S::Output: Clone + Send + Sync + 'static,
{
    Effect::new(move |_| {
        if matches!(action.value().get(), Some(Ok(_))) {
            if let Some(form) = form.get_untracked() {
                form.reset();
            }
        }
    });
}
