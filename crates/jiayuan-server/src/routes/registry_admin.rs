//! 登记簿维护 registry administration: divisions, grid cells, estates, firms, service
//! assignments, buildings, houses, occupancy and leases, each written through the host's
//! registry service ([`jiayuan_host::registry::RegistryWrite`]), which checks the caller's reach,
//! validates with field errors and audits in the same transaction.
//!
//! Answers: 201 for an insert, 200 for an update or an unchanged row, as `{"id", "change",
//! "fields"}` ([`ChangeAnswer`]). A role that may never do the change is 403; a target outside
//! the caller's reach is 404, exactly as a missing one; refused fields are 422 naming the field
//! and the rule (never the value).

use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use jiayuan_host::access::Denied;
use jiayuan_host::registry::{FieldError, RegistryError};
use jiayuan_plugin_api::FieldViolation;

use crate::error::ApiError;

/// A refused registry change as an API error: 403 for the role, 404 outside the reach (as if
/// absent), 422 with the field violations, the store's failures as elsewhere.
pub(crate) fn registry_error(e: RegistryError) -> ApiError {
    match e {
        RegistryError::Denied(Denied::Forbidden { role, .. }) => ApiError::client(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("{}无权执行此操作", role.name_zh()),
            format!("a {role} may not do this"),
        ),
        RegistryError::Denied(_) => not_found(),
        RegistryError::Invalid(errors) => ApiError::invalid(errors.into_iter().map(violation).collect()),
        RegistryError::Store(e) => super::registry::store_error(e),
    }
}

/// 404 for a registry object that is missing or outside the caller's reach.
pub(crate) fn not_found() -> ApiError {
    ApiError::client(StatusCode::NOT_FOUND, "not_found", "未找到该登记对象", "no such registry object")
}

fn violation(e: FieldError) -> FieldViolation {
    FieldViolation::new(&e.field, &e.rule, e.message_zh, e.message_en)
}

/// The neutral answer to a registration the district must review (the document is registered
/// for someone the caller does not reach; nothing about them is said).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Referred {
    /// Always `referred`.
    #[schema(example = "referred")]
    status: &'static str,
    /// 说明.
    #[schema(example = "已提交区级核对")]
    message_zh: &'static str,
    /// The message in English.
    #[schema(example = "referred to the district for review")]
    message_en: &'static str,
}

impl Referred {
    pub(crate) fn new() -> Referred {
        Referred {
            status: "referred",
            message_zh: "已提交区级核对",
            message_en: "referred to the district for review",
        }
    }
}
