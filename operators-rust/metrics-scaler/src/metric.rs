//! Reading one metric from a Prometheus-compatible query API: the request to make and how its
//! answer becomes a value, or the `lastError` saying why there is none.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use wasm_operator_sdk::http;

/// A sample: the text the metrics API wrote (reported as is) and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub text: String,
    pub value: f64,
}

/// `GET <metricsUrl>/api/v1/query?query=<query>`, asking for JSON, for at most 5 s.
pub fn query_request(metrics_url: &str, query: &str) -> http::Request {
    let base = metrics_url.strip_suffix('/').unwrap_or(metrics_url);
    http::Request::get(format!(
        "{base}/api/v1/query?query={}",
        http::percent_encode(query)
    ))
    .header("accept", "application/json")
    .timeout(Duration::from_secs(5))
}

/// Queries the metrics API; `Err` is the `lastError` to report.
pub fn read(metrics_url: &str, query: &str) -> Result<Sample, String> {
    let response = query_request(metrics_url, query)
        .send()
        .map_err(|error| error.to_string())?;
    if !response.is_success() {
        return Err(format!("metrics API returned HTTP {}", response.status));
    }
    parse_query_response(&response.body)
        .ok_or_else(|| "metrics API returned no usable sample".to_owned())
}

#[derive(Deserialize)]
struct QueryResponse {
    status: String,
    data: Option<QueryData>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct QueryData {
    result_type: String,
    result: Value,
}

/// The sample of a successful instant query: the first element of a vector
/// (`result[0].value[1]`) or a scalar (`result[1]`), a string holding a finite number.
pub fn parse_query_response(body: &str) -> Option<Sample> {
    let response: QueryResponse = serde_json::from_str(body).ok()?;
    if response.status != "success" {
        return None;
    }
    let data = response.data?;
    let text = match data.result_type.as_str() {
        "vector" => data.result.get(0)?.get("value")?.get(1)?,
        "scalar" => data.result.get(1)?,
        _ => return None,
    }
    .as_str()?;
    let value: f64 = text.parse().ok()?;
    value.is_finite().then(|| Sample {
        text: text.to_owned(),
        value,
    })
}
