//! [`ApiError`]: the one error type of the HTTP surface.
//!
//! 4xx bodies name the field and the reason in Chinese and English and are not logged as errors;
//! 5xx bodies are generic and the cause is logged with the request id.
//!
//! No error body and no logged cause carries personal data: every text is passed through
//! [`privacy::scrub`] (identity-number- and phone-shaped runs masked) when the answer is built or
//! the cause is logged, and what serde or axum quote back from a rejected request is masked with
//! [`privacy::redact_echoed`].

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use jiayuan_host::engine::EngineError;
use jiayuan_host::plugins::CallError;
use jiayuan_plugin_api::{FieldViolation, PluginError};

use crate::privacy;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message_zh: String,
    message_en: String,
    violations: Vec<FieldViolation>,
    headers: Vec<(HeaderName, HeaderValue)>,
}

/// The JSON body of every error answer: `{"error": {"code", "message_zh", "message_en",
/// "violations": [...]}}` (the `ErrorBody` schema of the OpenAPI document).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong, in Chinese and English.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable machine-readable code (`invalid_input`, `unauthenticated`, `not_found`, …).
    #[schema(example = "invalid_input")]
    pub code: String,
    /// 中文说明 the message in Chinese.
    #[schema(example = "输入有误，请按字段说明修改")]
    pub message_zh: String,
    /// The message in English.
    #[schema(example = "the input is invalid; see the field violations")]
    pub message_en: String,
    /// Field by field, what is wrong (present on 400 and 422 answers, left out when empty).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(required = false)]
    pub violations: Vec<Violation>,
}

/// One field's problem.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Violation {
    /// The field (`data.breed`, `body`, `limit`, …).
    #[schema(example = "data.breed")]
    pub field: String,
    /// A stable machine-readable code.
    #[schema(example = "banned_breed")]
    pub code: String,
    /// 中文说明 the reason in Chinese.
    pub message_zh: String,
    /// The reason in English.
    pub message_en: String,
}

impl ApiError {
    /// A client error.
    pub fn client(status: StatusCode, code: &'static str, zh: impl Into<String>, en: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message_zh: zh.into(),
            message_en: en.into(),
            violations: Vec::new(),
            headers: Vec::new(),
        }
    }

    /// 422 with field violations.
    pub fn invalid(violations: Vec<FieldViolation>) -> ApiError {
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "invalid_input",
            message_zh: "输入有误，请按字段说明修改".into(),
            message_en: "the input is invalid; see the field violations".into(),
            violations,
            headers: Vec::new(),
        }
    }

    /// 400 for a single bad request part (body, query, path).
    pub fn bad_request(field: &str, code: &str, zh: String, en: String) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "bad_request",
            message_zh: zh.clone(),
            message_en: en.clone(),
            violations: vec![FieldViolation::new(field, code, zh, en)],
            headers: Vec::new(),
        }
    }

    /// 500: the body says nothing; the cause is logged here.
    pub fn internal(cause: &dyn std::fmt::Display) -> ApiError {
        tracing::error!(error = %privacy::scrub(&cause.to_string()), "request failed");
        ApiError::client(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "服务器内部错误，请稍后再试",
            "internal error; try again later",
        )
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The same error with another status (413 for a body too large to buffer).
    pub fn with_status(mut self, status: StatusCode) -> ApiError {
        self.status = status;
        self
    }

    /// Adds a response header (`Retry-After`, `WWW-Authenticate`).
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> ApiError {
        self.headers.push((name, value));
        self
    }
}

impl IntoResponse for ApiError {
    /// The JSON answer, with every text [`privacy::scrub`]bed.
    fn into_response(self) -> Response {
        let violations: Vec<Violation> = self
            .violations
            .iter()
            .map(|v| Violation {
                field: privacy::scrub(&v.field),
                code: privacy::scrub(&v.code),
                message_zh: privacy::scrub(&v.message_zh),
                message_en: privacy::scrub(&v.message_en),
            })
            .collect();
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message_zh: privacy::scrub(&self.message_zh),
                message_en: privacy::scrub(&self.message_en),
                violations,
            },
        };
        let mut res = (self.status, Json(body)).into_response();
        for (name, value) in self.headers {
            res.headers_mut().insert(name, value);
        }
        res
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> ApiError {
        let (code, zh) = match &r {
            JsonRejection::JsonSyntaxError(_) => ("malformed_json", "请求体不是有效的 JSON"),
            JsonRejection::JsonDataError(_) => ("wrong_shape", "请求体结构不正确"),
            JsonRejection::MissingJsonContentType(_) => ("content_type", "请求需要 Content-Type: application/json"),
            _ => ("unreadable_body", "无法读取请求体"),
        };
        let mut e = ApiError::bad_request("body", code, zh.to_owned(), privacy::redact_echoed(&r.body_text()));
        if matches!(r, JsonRejection::MissingJsonContentType(_)) {
            e.status = StatusCode::UNSUPPORTED_MEDIA_TYPE;
        }
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            e = ApiError::bad_request(
                "body",
                "too_large",
                "请求体过大".into(),
                "the request body is larger than the server accepts".into(),
            );
            e.status = StatusCode::PAYLOAD_TOO_LARGE;
        }
        e
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> ApiError {
        ApiError::bad_request("query", "bad_query", "查询参数有误".to_owned(), privacy::redact_echoed(&r.body_text()))
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> ApiError {
        ApiError::bad_request("path", "bad_path", "路径参数有误".to_owned(), privacy::redact_echoed(&r.body_text()))
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> ApiError {
        use StatusCode as S;
        let en = e.to_string();
        match e {
            EngineError::UnknownPlugin(id) => ApiError::client(
                S::NOT_FOUND,
                "unknown_item",
                format!("没有已加载的服务事项 `{id}`"),
                format!("no service item `{id}` is loaded"),
            ),
            EngineError::UnknownKind { plugin, kind } => ApiError::client(
                S::NOT_FOUND,
                "unknown_kind",
                format!("服务事项 `{plugin}` 没有记录类型 `{kind}`"),
                format!("service item `{plugin}` has no record kind `{kind}`"),
            ),
            EngineError::NotFound { what, id } => ApiError::client(
                S::NOT_FOUND,
                "not_found",
                format!("未找到{} {id}", what_zh(what)),
                format!("{what} {id} not found"),
            ),
            EngineError::Disabled { item, place, place_name } => ApiError::client(
                S::CONFLICT,
                "item_disabled",
                format!("服务事项 `{item}` 未在「{place_name}」（{place}）启用，不能办理新业务；已有记录仍可查看"),
                en,
            ),
            EngineError::Invalid(v) => ApiError::invalid(v),
            EngineError::TransitionNotAllowed { transition, state, allowed, .. } => {
                let mut err = ApiError::client(
                    S::CONFLICT,
                    "transition_not_allowed",
                    format!("当前状态 `{state}` 不能执行 `{transition}`（可执行状态：{allowed}）"),
                    en,
                );
                err.violations = vec![FieldViolation::new(
                    "transition",
                    "not_allowed",
                    err.message_zh.clone(),
                    err.message_en.clone(),
                )];
                err
            }
            EngineError::Forbidden { .. } => ApiError::client(S::FORBIDDEN, "forbidden", "无权执行此操作", en),
            EngineError::Conflict(msg) => ApiError::client(S::CONFLICT, "conflict", format!("数据冲突：{msg}"), msg),
            EngineError::Plugin(c) => match c {
                CallError::Plugin(PluginError::Invalid(v)) => ApiError::invalid(v),
                CallError::Plugin(PluginError::Conflict(m)) => {
                    ApiError::client(S::CONFLICT, "conflict", format!("数据冲突：{m}"), m)
                }
                CallError::Plugin(PluginError::NotFound(m)) => {
                    ApiError::client(S::NOT_FOUND, "not_found", format!("未找到：{m}"), m)
                }
                other @ (CallError::Timeout { .. } | CallError::Quarantined { .. } | CallError::Died { .. }) => {
                    tracing::error!(error = %privacy::scrub(&other.to_string()), "plugin unavailable");
                    let plugin = other.plugin().unwrap_or_default();
                    // The item is named by its loaded plugin's id, never by the request's text.
                    ApiError::client(
                        S::SERVICE_UNAVAILABLE,
                        "item_unavailable",
                        format!("服务事项 `{plugin}` 暂时不可用，请稍后再试"),
                        format!("the service item `{plugin}` is unavailable right now; try again later"),
                    )
                }
                other => ApiError::internal(&other),
            },
            other => ApiError::internal(&other),
        }
    }
}

fn what_zh(what: &str) -> &'static str {
    match what {
        "estate" => "小区",
        "grid cell" => "网格",
        "record" => "记录",
        "person" => "人员",
        "house" => "房屋",
        _ => "对象",
    }
}
