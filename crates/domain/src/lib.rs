//! The rules of wsoauth, free of I/O: redirect URIs, secrets and their digests, client authentication
//! decoding, lifetimes. Time and randomness come in as parameters.

pub mod basic;
pub mod clock;
pub mod dates;
pub mod duration;
pub mod filter;
pub mod pkce;
pub mod redirect;
pub mod secret;
pub mod stamped;

pub use clock::{Clock, ManualClock, SystemClock};
pub use redirect::{RedirectUriError, append_query, validate_redirect_uri};
pub use secret::{OsRandom, RandomSource, SecretHasher, constant_time_eq};
