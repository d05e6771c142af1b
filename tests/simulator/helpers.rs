//! Test harness: a simulator with a manual clock and a reqwest client that speaks Prove's
//! wire format to it.

use std::sync::Arc;

use prove_gateway::simulator::{
    self, Credential, ManualClock, Product, SIM_UNIFY_CLIENT_ID, SIM_UNIFY_CLIENT_SECRET,
    SIM_VERIFY_CLIENT_ID, SIM_VERIFY_CLIENT_SECRET, Simulator, SimulatorConfig,
};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

pub const UNIFY_USER: &str = "2001004014";
pub const SHORT_TERM_USER: &str = "2001004018";
pub const VERIFY_USER: &str = "2001004011";
pub const FINAL_URL: &str = "https://www.example.com/done";

pub struct TestSim {
    pub sim: Simulator,
    pub clock: Arc<ManualClock>,
    pub http: reqwest::Client,
}

/// A decoded answer.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    /// Asserts a Prove error answer and returns its message.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: u64) -> &str {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        assert_eq!(self.body["code"], json!(code), "body: {}", self.body);
        self.body["message"].as_str().expect("message is a string")
    }

    #[track_caller]
    pub fn assert_ok(&self) -> &Value {
        assert_eq!(self.status, StatusCode::OK, "body: {}", self.body);
        &self.body
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A simulator with a manual clock and no rate limit (with a frozen clock every request falls in
/// one second, so the default 25/s would trip in longer tests; rate-limit tests turn it on).
pub async fn start() -> TestSim {
    start_with(|_| {}).await
}

pub async fn start_with(configure: impl FnOnce(&mut SimulatorConfig)) -> TestSim {
    let clock = Arc::new(ManualClock::new());
    let mut config = SimulatorConfig {
        rate_limit_rps: 0,
        clock: clock.clone(),
        ..SimulatorConfig::default()
    };
    configure(&mut config);
    let sim = simulator::spawn(config).await.unwrap();
    TestSim {
        sim,
        clock,
        http: reqwest::Client::new(),
    }
}

pub fn credentials(product: Product) -> (&'static str, &'static str) {
    match product {
        Product::Unify => (SIM_UNIFY_CLIENT_ID, SIM_UNIFY_CLIENT_SECRET),
        Product::Verify => (SIM_VERIFY_CLIENT_ID, SIM_VERIFY_CLIENT_SECRET),
    }
}

/// A second Unify credential, for tests about sessions belonging to their client.
pub fn other_unify_credential() -> Credential {
    Credential::new("other-unify-client", "other-unify-secret", Product::Unify)
}

impl TestSim {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.sim.base_url(), path)
    }

    pub async fn decode(response: reqwest::Response) -> Answer {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
        }
    }

    /// `POST /token` with a form.
    pub async fn token_request(&self, form: &[(&str, &str)]) -> Answer {
        let response = self
            .http
            .post(self.url("/token"))
            .form(form)
            .send()
            .await
            .unwrap();
        Self::decode(response).await
    }

    pub async fn token_for(&self, id: &str, secret: &str) -> String {
        let answer = self
            .token_request(&[
                ("client_id", id),
                ("client_secret", secret),
                ("grant_type", "client_credentials"),
            ])
            .await;
        answer.assert_ok()["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub async fn token(&self, product: Product) -> String {
        let (id, secret) = credentials(product);
        self.token_for(id, secret).await
    }

    /// `POST path` with a JSON body and a bearer token.
    pub async fn post(&self, path: &str, token: &str, body: &Value) -> Answer {
        let response = self
            .http
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap();
        Self::decode(response).await
    }

    /// `POST path` with a raw body and content type.
    pub async fn post_raw(
        &self,
        path: &str,
        token: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Answer {
        let response = self
            .http
            .post(self.url(path))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        Self::decode(response).await
    }

    /// Starts a Unify session for `phone` and returns its correlation ID.
    pub async fn start_unify(&self, token: &str, possession: &str, phone: &str) -> String {
        let mut body = json!({"possessionType": possession, "phoneNumber": phone});
        if possession == "desktop" {
            body["finalTargetUrl"] = json!(FINAL_URL);
        }
        let answer = self.post("/v3/unify", token, &body).await;
        answer.assert_ok()["correlationId"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub async fn unify_status(&self, token: &str, correlation_id: &str) -> Answer {
        self.post(
            "/v3/unify-status",
            token,
            &json!({"correlationId": correlation_id}),
        )
        .await
    }

    /// Starts a Verify session for `phone` and returns the answer.
    pub async fn start_verify(&self, token: &str, possession: &str, phone: &str) -> Answer {
        let mut body = json!({
            "possessionType": possession,
            "phoneNumber": phone,
            "firstName": "Sheilakathryn",
            "lastName": "Butrimovich",
        });
        if possession != "mobile" {
            body["finalTargetUrl"] = json!(FINAL_URL);
        }
        self.post("/v3/verify", token, &body).await
    }

    pub async fn verify_status(&self, token: &str, correlation_id: &str) -> Answer {
        self.post(
            "/v3/verify-status",
            token,
            &json!({"correlationId": correlation_id}),
        )
        .await
    }
}

/// The object's keys, sorted, for exact-shape assertions.
pub fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .expect("a JSON object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}
