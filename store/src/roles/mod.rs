//! [`Store`](crate::Store)'s methods, by role. Each matches on the backend
//! and calls the backend's method of the same name.

mod catalogue;
mod events;
mod journal;
pub(crate) mod maintenance;
mod queue;
