import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.Statement;
import java.util.Properties;

/**
 * A real PostgreSQL JDBC client, as CAST's Java components use it: prints the first column of each row. An empty
 * ssl* argument leaves that property unset (with none set, the driver's defaults apply: sslmode=prefer, as for
 * Keycloak's KC_DB_URL); the password, if any, comes from JDBC_CHECK_PASSWORD, never from the command line.
 */
public class JdbcCheck {
  public static void main(String[] args) throws Exception {
    if (args.length != 7) {
      System.err.println("usage: JdbcCheck <url> <user> <sslcert> <sslkey> <sslrootcert> <sslmode> <query>");
      System.exit(2);
    }
    Properties props = new Properties();
    props.setProperty("user", args[1]);
    if (!args[5].isEmpty()) props.setProperty("ssl", "true");
    String[] names = {"sslcert", "sslkey", "sslrootcert", "sslmode"};
    for (int i = 0; i < names.length; i++) if (!args[2 + i].isEmpty()) props.setProperty(names[i], args[2 + i]);
    String password = System.getenv("JDBC_CHECK_PASSWORD");
    if (password != null) props.setProperty("password", password);
    props.setProperty("connectTimeout", "10");
    try (Connection c = DriverManager.getConnection(args[0], props);
         Statement s = c.createStatement();
         ResultSet rs = s.executeQuery(args[6])) {
      while (rs.next()) System.out.println(rs.getString(1));
    } catch (Exception e) {
      System.err.println(e.getClass().getName() + ": " + e.getMessage());
      System.exit(1);
    }
  }
}
