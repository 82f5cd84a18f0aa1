/*
 * JdbcListen - a pgjdbc client driven line by line on stdin by
 * tests/integration/test_listen_txn.py (the same commands as
 * node/listen.js):
 *
 *   listen CH | unlisten CH | unlisten * | notify CH PAYLOAD | wait N MS | pid | quit
 *
 * It prints "READY" once connected, "OK <command>" after each statement,
 * "NOTE <channel>\t<payload>\t<pid>" for each notification
 * PGConnection.getNotifications() returns, "WAITED <n>" (notifications so
 * far) after a wait, "PID <n>" (getBackendPID()) and "ERR <message>" on an
 * error.  A wait calls getNotifications(timeout), which reads the socket
 * without sending anything, as an application's listening thread does.
 */
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.SQLException;
import java.sql.Statement;

import org.postgresql.PGConnection;
import org.postgresql.PGNotification;

public class JdbcListen {
	private static int notes = 0;

	private static String ident(String name) {
		return "\"" + name.replace("\"", "\"\"") + "\"";
	}

	private static void print(PGNotification[] ns) {
		if (ns == null)
			return;
		for (PGNotification n : ns) {
			notes++;
			System.out.println("NOTE " + n.getName() + "\t" + n.getParameter() + "\t" + n.getPID());
		}
	}

	private static void exec(Connection c, String sql) throws SQLException {
		try (Statement st = c.createStatement()) {
			st.execute(sql);
		}
	}

	public static void main(String[] args) throws Exception {
		Connection c = DriverManager.getConnection(args[0], args[1], args[2]);
		c.setAutoCommit(true);
		PGConnection pg = c.unwrap(PGConnection.class);
		BufferedReader in = new BufferedReader(new InputStreamReader(System.in, "UTF-8"));
		System.out.println("READY");
		System.out.flush();
		String line;
		while ((line = in.readLine()) != null) {
			String[] w = line.split(" ", 3);
			try {
				switch (w[0]) {
				case "listen":
					exec(c, "LISTEN " + ident(w[1]));
					break;
				case "unlisten":
					exec(c, w[1].equals("*") ? "UNLISTEN *" : "UNLISTEN " + ident(w[1]));
					break;
				case "notify":
					try (PreparedStatement ps = c.prepareStatement("SELECT pg_notify(?, ?)")) {
						ps.setString(1, w[1]);
						ps.setString(2, w.length > 2 ? w[2] : "");
						ps.executeQuery().close();
					}
					break;
				case "wait": {
					int n = Integer.parseInt(w[1]);
					long deadline = System.currentTimeMillis() + Long.parseLong(w[2]);
					long left;
					while (notes < n && (left = deadline - System.currentTimeMillis()) > 0)
						print(pg.getNotifications((int) Math.max(1, left)));
					System.out.println("WAITED " + notes);
					System.out.flush();
					continue;
				}
				case "pid":
					System.out.println("PID " + pg.getBackendPID());
					System.out.flush();
					continue;
				case "quit":
					c.close();
					return;
				default:
					System.out.println("ERR unknown command " + w[0]);
					System.out.flush();
					continue;
				}
				/* what arrived with the statement's answer */
				print(pg.getNotifications());
				System.out.println("OK " + w[0]);
			} catch (SQLException e) {
				System.out.println("ERR " + e.getMessage().replace('\n', ' '));
			}
			System.out.flush();
		}
		c.close();
	}
}
