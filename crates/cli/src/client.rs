//! A small blocking client for the node's HTTP API.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use poi_node::home::Home;
use serde_json::Value;

use crate::cli::Global;

/// Seconds before a request to the node gives up.
const REQUEST_TIMEOUT_SECS: u64 = 15;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClientError {
    /// No answer.
    #[error("cannot reach the node at {url}: {cause}. Is it running? Consider `poi node start`")]
    Unreachable { url: String, cause: String },
    /// The node refused the request.
    #[error("{message} ({code})")]
    Rejected {
        status: u16,
        code: String,
        message: String,
    },
    /// The answer was not the JSON we expect.
    #[error("unexpected answer from {url}: {cause}")]
    BadResponse { url: String, cause: String },
}

/// The home directory from --home, $POI_HOME or ~/.poi.
pub(crate) fn home(global: &Global) -> Home {
    let root = global.home.clone().unwrap_or_else(|| {
        std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default()
            .join(".poi")
    });
    Home::new(root)
}

pub(crate) struct Api {
    base: String,
    agent: ureq::Agent,
}

impl Api {
    /// The node from --node, or from HOME/config.toml.
    pub(crate) fn resolve(global: &Global) -> anyhow::Result<Api> {
        let base = match &global.node {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => {
                let home = home(global);
                let config = home.config().with_context(|| {
                    format!(
                        "no --node given and cannot read {}",
                        home.config_path().display()
                    )
                })?;
                let mut addr = config.api_addr;
                if addr.ip().is_unspecified() {
                    addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
                }
                format!("http://{addr}")
            }
        };
        Ok(Api::new(base))
    }

    pub(crate) fn new(base: String) -> Api {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(REQUEST_TIMEOUT_SECS)))
            .build();
        Api {
            base,
            agent: ureq::Agent::new_with_config(config),
        }
    }

    pub(crate) fn get(&self, path: &str) -> Result<Value, ClientError> {
        let url = format!("{}{path}", self.base);
        let response = self.agent.get(&url).call();
        Self::finish(url, response)
    }

    pub(crate) fn post(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        let url = format!("{}{path}", self.base);
        let response = self.agent.post(&url).send_json(body);
        Self::finish(url, response)
    }

    fn finish(
        url: String,
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Value, ClientError> {
        let mut response = response.map_err(|e| ClientError::Unreachable {
            url: url.clone(),
            cause: e.to_string(),
        })?;
        let status = response.status().as_u16();
        let body: Value =
            response
                .body_mut()
                .read_json()
                .map_err(|e| ClientError::BadResponse {
                    url: url.clone(),
                    cause: e.to_string(),
                })?;
        if (200..300).contains(&status) {
            return Ok(body);
        }
        let error = &body["error"];
        Err(ClientError::Rejected {
            status,
            code: error["code"].as_str().unwrap_or("unknown").to_string(),
            message: error["message"]
                .as_str()
                .unwrap_or("no message")
                .to_string(),
        })
    }
}
