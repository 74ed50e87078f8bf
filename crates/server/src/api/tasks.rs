//! Tasks actions.

use wsoauth_types::ApiErrorCode;

use super::{ActionSpec, Context, Failure, Reply};

pub const ACTIONS: &[ActionSpec] = &[];

pub async fn run(action: &str, _ctx: &Context<'_>) -> Result<Reply, Failure> {
    match action {
        _ => Err(ApiErrorCode::ActionInvalid.into()),
    }
}
