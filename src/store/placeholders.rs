//! Placeholders for the store's multi-row statements (state upserts, log offsets, audit
//! batches), in the form each backend binds fastest. PostgreSQL needs numbered `$N`. SQLite
//! gets anonymous `?` in order: sqlx resolves every `$N` of a SQLite statement by name, and
//! SQLite finds a parameter's name by walking the list of all names, so binding a statement of
//! a few thousand `$N` parameters is quadratic. It took a third of the CPU of a 10,000-rule
//! heartbeat before; anonymous parameters bind in constant time each.

use sqlx::AnyConnection;

use super::Backend;

/// The backend a store connection talks to (anything but SQLite gets PostgreSQL's form, which
/// both accept).
pub fn backend_of(conn: &AnyConnection) -> Backend {
    if conn.backend_name() == <sqlx::Sqlite as sqlx::Database>::NAME {
        Backend::Sqlite
    } else {
        Backend::Postgres
    }
}

/// `(…), (…), …`: `rows` groups of `cols` placeholders, bound row by row in order.
pub fn rows(backend: Backend, rows: usize, cols: usize) -> String {
    let mut out = String::with_capacity(rows * cols * 6);
    for r in 0..rows {
        if r > 0 {
            out.push_str(", ");
        }
        out.push('(');
        for c in 0..cols {
            if c > 0 {
                out.push_str(", ");
            }
            match backend {
                Backend::Sqlite => out.push('?'),
                Backend::Postgres => {
                    out.push('$');
                    out.push_str(&(r * cols + c + 1).to_string());
                }
            }
        }
        out.push(')');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_backend_gets_its_form() {
        assert_eq!(rows(Backend::Postgres, 2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(rows(Backend::Sqlite, 2, 3), "(?, ?, ?), (?, ?, ?)");
        assert_eq!(rows(Backend::Sqlite, 1, 1), "(?)");
        assert_eq!(rows(Backend::Postgres, 0, 4), "");
    }

    #[tokio::test]
    async fn a_sqlite_store_connection_is_recognised() {
        use sqlx::Connection;
        sqlx::any::install_default_drivers();
        let conn = AnyConnection::connect("sqlite::memory:").await.unwrap();
        assert_eq!(backend_of(&conn), Backend::Sqlite);
    }
}
