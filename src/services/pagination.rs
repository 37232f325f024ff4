//! Keyset (cursor) pagination shared by the list queries: stable under inserts, index-friendly, and
//! with opaque cursors that carry the sort key of the last row seen.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, FromQueryResult, PaginatorTrait,
    QueryFilter, QueryOrder, QueryResult, QuerySelect, QueryTrait, Select, Value,
    sea_query::{Expr, ExprTrait, Order, Query},
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{AppError, AppResult};

pub const DEFAULT_PAGE_SIZE: i32 = 20;
pub const MAX_PAGE_SIZE: i32 = 100;

/// A validated page request: `first` in 1..=100 and an optional decoded cursor.
#[derive(Clone, Debug)]
pub struct PageRequest {
    pub first: u64,
    pub after: Option<String>,
    /// Whether the list's `totalCount` is wanted: counting a long list costs more than its page.
    pub with_total: bool,
}

impl PageRequest {
    pub fn parse(first: Option<i32>, after: Option<String>) -> AppResult<Self> {
        let first = first.unwrap_or(DEFAULT_PAGE_SIZE);
        if !(1..=MAX_PAGE_SIZE).contains(&first) {
            return Err(AppError::field(
                "first",
                format!("must be between 1 and {MAX_PAGE_SIZE}"),
            ));
        }
        Ok(PageRequest {
            first: u64::try_from(first).unwrap_or(1),
            after,
            with_total: true,
        })
    }

    /// The same request, counting the whole list only when `with_total`.
    pub fn counting(self, with_total: bool) -> Self {
        PageRequest { with_total, ..self }
    }
}

/// The value of the sort column of a row, as carried in a cursor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", content = "v")]
pub enum SortKey {
    Time(DateTime<Utc>),
    Text(String),
    Date(NaiveDate),
}

impl From<SortKey> for Value {
    fn from(key: SortKey) -> Value {
        match key {
            SortKey::Time(t) => t.into(),
            SortKey::Text(s) => s.into(),
            SortKey::Date(d) => d.into(),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct CursorData {
    /// The ordering the cursor was made under (e.g. "LAST_NAME:ASC"): a cursor only continues its own list.
    o: String,
    k: SortKey,
    i: Uuid,
}

pub fn encode_cursor(ordering: &str, key: SortKey, id: Uuid) -> String {
    let data = CursorData {
        o: ordering.to_owned(),
        k: key,
        i: id,
    };
    // Serializing these plain types cannot fail.
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&data).unwrap_or_default())
}

fn decode_cursor(cursor: &str, ordering: &str) -> AppResult<(SortKey, Uuid)> {
    let invalid = || AppError::field("after", "is not a valid cursor");
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor.trim())
        .map_err(|_| invalid())?;
    let data: CursorData = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    if data.o != ordering {
        return Err(AppError::field(
            "after",
            "belongs to a list with a different orderBy",
        ));
    }
    Ok((data.k, data.i))
}

/// Whether a cursor's key has the type of the sort column (a tampered cursor must not reach SQL).
fn key_fits(key: &SortKey, column: &impl ColumnTrait) -> bool {
    use sea_orm::ColumnType;
    matches!(
        (key, column.def().get_column_type()),
        (
            SortKey::Time(_),
            ColumnType::TimestampWithTimeZone | ColumnType::Timestamp | ColumnType::DateTime
        ) | (
            SortKey::Text(_),
            ColumnType::String(_) | ColumnType::Text | ColumnType::Char(_)
        ) | (SortKey::Date(_), ColumnType::Date)
    )
}

/// Where a row sits in its list; its cursor is made only when a client asks for it.
#[derive(Clone, Debug)]
pub struct Position {
    key: SortKey,
    id: Uuid,
}

/// One page of rows plus what the connection needs.
pub struct Page<T> {
    pub items: Vec<(Position, T)>,
    /// The list's ordering, as cursors carry it.
    pub ordering: String,
    pub has_next_page: bool,
    pub has_previous_page: bool,
    /// The length of the whole list; `None` when the request did not ask for it.
    pub total_count: Option<u64>,
}

impl<T> Page<T> {
    /// The cursor of a row at `position`.
    pub fn cursor(&self, position: &Position) -> String {
        encode_cursor(&self.ordering, position.key.clone(), position.id)
    }

    /// The same page with its rows converted.
    pub fn map<U>(self, convert: impl Fn(T) -> U) -> Page<U> {
        Page {
            items: self
                .items
                .into_iter()
                .map(|(position, row)| (position, convert(row)))
                .collect(),
            ordering: self.ordering,
            has_next_page: self.has_next_page,
            has_previous_page: self.has_previous_page,
            total_count: self.total_count,
        }
    }
}

/// How a list is ordered: by `sort`, ties broken by `id`, both in the same direction. `name` (e.g.
/// "LastName:ASC") is written into cursors so a cursor only continues the list it came from.
pub struct Keyset<'a, C, I> {
    pub sort: C,
    pub id: I,
    pub descending: bool,
    pub name: &'a str,
}

/// The column that carries the list's length on every row of a counted page.
const LIST_TOTAL: &str = "list_total";

/// A row of a counted page: the record and the length of the whole list.
struct Counted<M> {
    model: M,
    total: i64,
}

impl<M: FromQueryResult> FromQueryResult for Counted<M> {
    fn from_query_result(row: &QueryResult, pre: &str) -> Result<Self, DbErr> {
        Ok(Counted {
            model: M::from_query_result(row, pre)?,
            total: row.try_get(pre, LIST_TOTAL)?,
        })
    }
}

/// Runs `select` (already filtered) as a keyset page. `key_of` extracts a row's sort key for its
/// cursor. One statement: when the total is wanted, the count rides along as a scalar subquery
/// (evaluated once), so it costs no round trip of its own; only an empty page counts separately.
pub async fn fetch_page<E, C>(
    db: &impl ConnectionTrait,
    select: Select<E>,
    keyset: Keyset<'_, C, E::Column>,
    page: &PageRequest,
    key_of: impl Fn(&E::Model) -> (SortKey, Uuid),
) -> AppResult<Page<E::Model>>
where
    E: EntityTrait,
    E::Model: Sync,
    C: ColumnTrait,
{
    fetch_page_counted_by(db, select, keyset, page, key_of, None).await
}

/// `fetch_page` for a list whose length the database keeps (`stored_total`, a scalar expression
/// such as the owner's tallied patient count), read instead of counting the list; `None` counts.
pub async fn fetch_page_counted_by<E, C>(
    db: &impl ConnectionTrait,
    select: Select<E>,
    keyset: Keyset<'_, C, E::Column>,
    page: &PageRequest,
    key_of: impl Fn(&E::Model) -> (SortKey, Uuid),
    stored_total: Option<Expr>,
) -> AppResult<Page<E::Model>>
where
    E: EntityTrait,
    E::Model: Sync,
    C: ColumnTrait,
{
    let Keyset {
        sort,
        id,
        descending,
        name: ordering,
    } = keyset;
    let whole_list = page.with_total.then(|| select.clone());

    let mut query = select;
    if let Some(cursor) = &page.after {
        let (key, last_id) = decode_cursor(cursor, ordering)?;
        if !key_fits(&key, &sort) {
            return Err(AppError::field("after", "is not a valid cursor"));
        }
        let key = Value::from(key);
        let condition = if descending {
            Condition::any()
                .add(sort.lt(key.clone()))
                .add(sort.eq(key).and(id.lt(last_id)))
        } else {
            Condition::any()
                .add(sort.gt(key.clone()))
                .add(sort.eq(key).and(id.gt(last_id)))
        };
        query = query.filter(condition);
    }
    let order = if descending { Order::Desc } else { Order::Asc };
    let query = query
        .order_by(sort, order.clone())
        .order_by(id, order)
        .limit(page.first + 1);
    let (mut rows, mut total_count) = match &whole_list {
        Some(whole_list) => {
            let total = match &stored_total {
                Some(stored) => stored.clone(),
                None => Expr::SubQuery(
                    None,
                    Box::new(
                        Query::select()
                            .expr(Expr::cust("COUNT(*)"))
                            .from_subquery(whole_list.clone().into_query(), "counted")
                            .to_owned()
                            .into(),
                    ),
                ),
            };
            let rows = query
                .expr_as(total, LIST_TOTAL)
                .into_model::<Counted<E::Model>>()
                .all(db)
                .await?;
            let total = rows
                .first()
                .map(|row| u64::try_from(row.total).unwrap_or(0));
            (rows.into_iter().map(|row| row.model).collect(), total)
        }
        None => (query.all(db).await?, None),
    };
    if total_count.is_none()
        && let Some(whole_list) = whole_list
    {
        total_count = Some(whole_list.count(db).await?);
    }
    let has_next_page = rows.len() as u64 > page.first;
    rows.truncate(usize::try_from(page.first).unwrap_or(usize::MAX));
    let items = rows
        .into_iter()
        .map(|row| {
            let (key, id) = key_of(&row);
            (Position { key, id }, row)
        })
        .collect();
    Ok(Page {
        items,
        ordering: ordering.to_owned(),
        has_next_page,
        has_previous_page: page.after.is_some(),
        total_count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_are_bound_to_their_ordering() {
        let id = Uuid::now_v7();
        let cursor = encode_cursor("LAST_NAME:ASC", SortKey::Text("Smith".into()), id);
        let (key, got) = decode_cursor(&cursor, "LAST_NAME:ASC").expect("decodes");
        assert_eq!((key, got), (SortKey::Text("Smith".into()), id));
        assert!(decode_cursor(&cursor, "LAST_NAME:DESC").is_err());
        assert!(decode_cursor("not-a-cursor", "LAST_NAME:ASC").is_err());
    }

    #[test]
    fn page_size_must_be_between_one_and_one_hundred() {
        assert_eq!(PageRequest::parse(None, None).expect("default").first, 20);
        assert!(PageRequest::parse(Some(0), None).is_err());
        assert!(PageRequest::parse(Some(101), None).is_err());
        assert!(PageRequest::parse(Some(-5), None).is_err());
        assert_eq!(PageRequest::parse(Some(100), None).expect("max").first, 100);
    }
}
