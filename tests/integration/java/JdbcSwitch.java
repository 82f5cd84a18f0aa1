/*
 * A JDBC client for the integration suite (tests/integration/test_session_move.py):
 * pgjdbc with prepareThreshold=1, so that every PreparedStatement is a named
 * server-side statement from its first execution, runs prepared statements in a
 * loop through pgcutover while the test runs SWITCH, and reports what it saw.
 *
 * Usage: java JdbcSwitch URL USER PASSWORD STOP_FILE MAX_SECONDS
 *
 * URL carries the driver settings (prepareThreshold=1 ...).  The loop runs until
 * STOP_FILE exists or MAX_SECONDS have passed.  One iteration is one transaction
 * (autocommit off): a prepared SELECT whose result is checked, a prepared INSERT
 * into orders, a commit.  The session SETs statement_timeout once at the start
 * and checks in every iteration that it still holds.
 *
 * It prints, one per line, on stdout:
 *   READY                      after the first 20 iterations
 *   PORT <port> <iteration>    whenever the server port (inet_server_port()) changes
 *   FAIL <sqlstate> <message>  for each failure (at most 20 printed)
 *   RESULT iterations=N committed=N failures=N last_port=N
 * and exits 0 when nothing failed, 1 otherwise, 2 on bad usage.  After a
 * failure that closed the connection it stops at once: a dead session cannot
 * fail again, and the test wants to know it died, not how often.
 */

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.Properties;

public class JdbcSwitch {
	private static int failures = 0;

	private static void fail(String sqlstate, String message) {
		failures++;
		if (failures <= 20) {
			System.out.println("FAIL " + sqlstate + " " + message.replace('\n', ' '));
			System.out.flush();
		}
	}

	public static void main(String[] args) throws Exception {
		if (args.length != 5) {
			System.err.println("usage: JdbcSwitch URL USER PASSWORD STOP_FILE MAX_SECONDS");
			System.exit(2);
		}
		String url = args[0];
		Path stop = Paths.get(args[3]);
		long deadline = System.nanoTime() + Long.parseLong(args[4]) * 1_000_000_000L;
		Properties props = new Properties();
		props.setProperty("user", args[1]);
		props.setProperty("password", args[2]);

		int iterations = 0, committed = 0, lastPort = -1;
		try (Connection conn = DriverManager.getConnection(url, props)) {
			conn.setAutoCommit(false);
			try (Statement st = conn.createStatement()) {
				// a session setting, committed: it must follow the session
				st.execute("SET statement_timeout = '9s'");
			}
			conn.commit();
			PreparedStatement select = conn.prepareStatement(
				"SELECT inet_server_port(), ?::int * 2, current_setting('statement_timeout')");
			PreparedStatement insert = conn.prepareStatement(
				"INSERT INTO orders (note) VALUES (?) RETURNING id");
			while (!Files.exists(stop) && System.nanoTime() < deadline) {
				iterations++;
				try {
					int port;
					select.setInt(1, iterations);
					try (ResultSet rs = select.executeQuery()) {
						if (!rs.next())
							throw new SQLException("the prepared SELECT returned no row", "XX000");
						port = rs.getInt(1);
						if (rs.getInt(2) != iterations * 2)
							throw new SQLException("the prepared SELECT returned " + rs.getInt(2) +
									       " for " + iterations + " * 2", "XX000");
						if (!"9s".equals(rs.getString(3)))
							throw new SQLException("statement_timeout is " + rs.getString(3) +
									       ", the session SET 9s", "XX000");
					}
					insert.setString(1, "jdbc");
					try (ResultSet rs = insert.executeQuery()) {
						if (!rs.next())
							throw new SQLException("the prepared INSERT returned no id", "XX000");
					}
					conn.commit();
					committed++;
					if (port != lastPort) {
						System.out.println("PORT " + port + " " + iterations);
						System.out.flush();
						lastPort = port;
					}
				} catch (SQLException e) {
					fail(e.getSQLState(), e.getMessage());
					if (conn.isClosed() || !conn.isValid(5))
						break;
					try {
						conn.rollback();
					} catch (SQLException e2) {
						fail(e2.getSQLState(), "rollback: " + e2.getMessage());
						break;
					}
				}
				if (iterations == 20) {
					System.out.println("READY");
					System.out.flush();
				}
				Thread.sleep(5);
			}
		} catch (SQLException e) {
			fail(e.getSQLState(), e.getMessage());
		}
		System.out.println("RESULT iterations=" + iterations + " committed=" + committed +
				   " failures=" + failures + " last_port=" + lastPort);
		System.out.flush();
		System.exit(failures == 0 ? 0 : 1);
	}
}
