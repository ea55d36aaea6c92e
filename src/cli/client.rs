use std::time::Duration;

use anyhow::{anyhow, Context};
use serde_json::Value;

/// How the CLI reaches a node besides its endpoint.
pub(crate) struct Connection {
    /// The `encoded` value of an API key, or `id:api_key`.
    pub api_key: Option<String>,
    /// A CA to trust for `https://` endpoints (a self-signed cluster's).
    pub ca_cert: Option<std::path::PathBuf>,
}

/// A thin REST client that turns the node's `{"error": …}` answers into errors.
pub(crate) struct Client {
    http: reqwest::Client,
    endpoint: String,
}

pub(crate) enum IngestOutcome {
    Accepted(Value),
    /// 429: the node asks to retry later.
    Busy(Option<Duration>),
}

impl Client {
    pub(crate) fn new(endpoint: &str, connection: &Connection) -> anyhow::Result<Client> {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(api_key) = &connection.api_key {
            let encoded = match api_key.split_once(':') {
                Some((id, secret)) => quarry_common::api_keys::encode_credential(id, secret),
                None => api_key.clone(),
            };
            let mut value = reqwest::header::HeaderValue::from_str(&format!("ApiKey {encoded}"))
                .context("the API key holds characters a header cannot carry")?;
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(600))
            .default_headers(headers);
        if let Some(path) = &connection.ca_cert {
            let pem = std::fs::read(path)
                .with_context(|| format!("cannot read the CA certificate `{}`", path.display()))?;
            let certificates = reqwest::Certificate::from_pem_bundle(&pem)
                .with_context(|| format!("`{}` is not a PEM certificate", path.display()))?;
            builder = builder.tls_certs_merge(certificates);
        }
        let http = builder.build().context("cannot build the HTTP client")?;
        Ok(Client {
            http,
            endpoint: endpoint.trim_end_matches('/').to_string(),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.endpoint)
    }

    async fn read(&self, response: reqwest::Response) -> anyhow::Result<Value> {
        let status = response.status();
        let body = response.text().await.context("reading the response")?;
        let json: Value = serde_json::from_str(&body).unwrap_or(Value::String(body));
        if status.is_success() {
            return Ok(json);
        }
        let message = json["error"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| json.to_string());
        Err(anyhow!("{status}: {message}"))
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> anyhow::Result<reqwest::Response> {
        request.send().await.with_context(|| {
            format!(
                "cannot reach Quarry at {} (is `quarry run` started?)",
                self.endpoint
            )
        })
    }

    pub(crate) async fn get_json(&self, path: &str) -> anyhow::Result<Value> {
        let response = self.send(self.http.get(self.url(path))).await?;
        self.read(response).await
    }

    pub(crate) async fn post_json(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let request = self
            .http
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body.to_string());
        let response = self.send(request).await?;
        self.read(response).await
    }

    pub(crate) async fn delete(&self, path: &str) -> anyhow::Result<Value> {
        let response = self.send(self.http.delete(self.url(path))).await?;
        self.read(response).await
    }

    pub(crate) async fn create_index(
        &self,
        config: Vec<u8>,
        is_json: bool,
    ) -> anyhow::Result<Value> {
        let content_type = if is_json {
            "application/json"
        } else {
            "application/yaml"
        };
        let request = self
            .http
            .post(self.url("/api/v1/indexes"))
            .header("content-type", content_type)
            .body(config);
        let response = self.send(request).await?;
        self.read(response).await
    }

    pub(crate) async fn ingest(
        &self,
        index_id: &str,
        commit: &str,
        body: bytes::Bytes,
    ) -> anyhow::Result<IngestOutcome> {
        let request = self
            .http
            .post(self.url(&format!("/api/v1/{index_id}/ingest?commit={commit}")))
            .header("content-type", "application/x-ndjson")
            .body(body);
        let response = self.send(request).await?;
        if response.status() == reqwest::StatusCode::TOO_MANY_REQUESTS {
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.parse::<u64>().ok())
                .map(Duration::from_secs);
            return Ok(IngestOutcome::Busy(retry_after));
        }
        Ok(IngestOutcome::Accepted(self.read(response).await?))
    }
}
