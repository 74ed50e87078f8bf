//! Members and teams through `/api/oauth2` (spec §3.2), compared with the recorded responses.

use serde_json::{Value, json};

use crate::common::*;
