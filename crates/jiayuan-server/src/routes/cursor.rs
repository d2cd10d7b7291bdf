//! List sorting and opaque pagination cursors.
//!
//! A cursor is URL-safe base64 of `v1.<sort>.<updated_at ms>.<id>`: the position of the last
//! record of a page in its sort order. It is opaque to clients (they pass back `next_cursor`);
//! one that does not decode, or was made for another sort, is a 400 naming `cursor`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use jiayuan_domain::{RecordId, Timestamp};
use jiayuan_store::{RecordOrder, RecordPosition};

use crate::error::ApiError;

fn sort_name(order: RecordOrder) -> &'static str {
    match order {
        RecordOrder::IdAsc => "id",
        RecordOrder::IdDesc => "-id",
        RecordOrder::UpdatedAsc => "updated_at",
        RecordOrder::UpdatedDesc => "-updated_at",
    }
}

/// Parses the `sort` parameter: `id` (default), `-id`, `updated_at`, `-updated_at`.
pub(crate) fn parse_sort(sort: Option<&str>) -> Result<RecordOrder, ApiError> {
    Ok(match sort.unwrap_or("id") {
        "id" => RecordOrder::IdAsc,
        "-id" => RecordOrder::IdDesc,
        "updated_at" => RecordOrder::UpdatedAsc,
        "-updated_at" => RecordOrder::UpdatedDesc,
        _ => {
            return Err(ApiError::bad_request(
                "sort",
                "bad_sort",
                "sort 只能是 id、-id、updated_at 或 -updated_at".into(),
                "`sort` must be one of id, -id, updated_at, -updated_at".into(),
            ));
        }
    })
}

/// The cursor for the position after `p` in `order`.
pub(crate) fn encode(order: RecordOrder, p: RecordPosition) -> String {
    URL_SAFE_NO_PAD.encode(format!("v1.{}.{}.{}", sort_name(order), p.updated_at.0, p.id.0))
}

/// Decodes a cursor made by [`encode`] for the same `order`.
pub(crate) fn decode(cursor: &str, order: RecordOrder) -> Result<RecordPosition, ApiError> {
    let bad = |en: &str| {
        ApiError::bad_request(
            "cursor",
            "bad_cursor",
            "分页游标无效，请从第一页重新开始".into(),
            format!("`cursor` {en}; start again from the first page"),
        )
    };
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad("is not a cursor this API issued"))?;
    let text = String::from_utf8(bytes).map_err(|_| bad("is not a cursor this API issued"))?;
    let mut parts = text.split('.');
    let (Some("v1"), Some(sort), Some(at), Some(id), None) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("is not a cursor this API issued"));
    };
    if sort != sort_name(order) {
        return Err(bad("was made for another `sort`"));
    }
    let (Ok(at), Ok(id)) = (at.parse::<i64>(), id.parse::<i64>()) else {
        return Err(bad("is not a cursor this API issued"));
    };
    Ok(RecordPosition { id: RecordId(id), updated_at: Timestamp(at) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_tampering_and_other_sorts() {
        let p = RecordPosition { id: RecordId(42), updated_at: Timestamp(1_780_000_000_000) };
        for order in [RecordOrder::IdAsc, RecordOrder::IdDesc, RecordOrder::UpdatedAsc, RecordOrder::UpdatedDesc] {
            assert_eq!(decode(&encode(order, p), order).expect("round trip"), p);
        }
        let c = encode(RecordOrder::IdAsc, p);
        assert_eq!(decode(&c, RecordOrder::UpdatedDesc).expect_err("other sort").status().as_u16(), 400);
        for bad in ["", "!!", "djEuaWQ", &URL_SAFE_NO_PAD.encode("v1.id.x.1"), &URL_SAFE_NO_PAD.encode("v2.id.1.1")] {
            assert_eq!(decode(bad, RecordOrder::IdAsc).expect_err(bad).status().as_u16(), 400, "{bad}");
        }
        assert!(parse_sort(Some("name")).is_err());
        assert_eq!(parse_sort(None).expect("default"), RecordOrder::IdAsc);
    }
}
