//! Raw SQL that PostgreSQL parses and plans once per connection.
//!
//! `diesel::sql_query` marks every statement unsafe to cache, so each call is parsed and
//! planned again: on the relay's hot path (a read and a delete per cycle, a watcher poll
//! every 2 ms) and in `outbox_enqueue` calls that was a large share of the database's
//! CPU. [`prepared`] builds the same kind of query, bound by position and read by name,
//! from a `&'static str`; diesel keys its per-connection statement cache on that text and
//! the bind types, so the statement is prepared once and then only executed.

use std::marker::PhantomData;

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::query_dsl::RunQueryDsl;
use diesel::serialize::ToSql;
use diesel::sql_types::{HasSqlType, Untyped};
use diesel::QueryResult;

/// A static SQL text; add binds with [`Prepared::bind`].
#[derive(Debug, Clone, Copy)]
#[must_use = "queries run only when executed"]
pub struct Prepared {
    sql: &'static str,
}

pub fn prepared(sql: &'static str) -> Prepared {
    Prepared { sql }
}

impl Prepared {
    /// Binds the next positional parameter (`$1`, `$2`, ...), as `sql_query(..).bind`.
    pub fn bind<ST, Value>(self, value: Value) -> Bound<Self, Value, ST> {
        Bound::new(self, value)
    }
}

/// A [`Prepared`] query with its parameters so far.
#[derive(Debug, Clone, Copy)]
#[must_use = "queries run only when executed"]
pub struct Bound<Q, Value, ST> {
    query: Q,
    value: Value,
    _type: PhantomData<ST>,
}

impl<Q, Value, ST> Bound<Q, Value, ST> {
    fn new(query: Q, value: Value) -> Self {
        Bound {
            query,
            value,
            _type: PhantomData,
        }
    }

    /// Binds the next positional parameter.
    pub fn bind<ST2, Value2>(self, value: Value2) -> Bound<Self, Value2, ST2> {
        Bound::new(self, value)
    }
}

impl<Q, Value, ST> QueryFragment<Pg> for Bound<Q, Value, ST>
where
    Pg: HasSqlType<ST>,
    Q: QueryFragment<Pg>,
    Value: ToSql<ST, Pg>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.query.walk_ast(out.reborrow())?;
        out.push_bind_param_value_only(&self.value)?;
        Ok(())
    }
}

impl<Q: QueryId, Value, ST: QueryId> QueryId for Bound<Q, Value, ST> {
    type QueryId = Bound<Q::QueryId, (), ST::QueryId>;
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q, Value, ST> Query for Bound<Q, Value, ST> {
    type SqlType = Untyped;
}

impl<Conn, Q, Value, ST> RunQueryDsl<Conn> for Bound<Q, Value, ST> {}

impl QueryFragment<Pg> for Prepared {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(self.sql);
        Ok(())
    }
}

impl QueryId for Prepared {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for Prepared {
    type SqlType = Untyped;
}

impl<Conn> RunQueryDsl<Conn> for Prepared {}
