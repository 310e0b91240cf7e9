import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.Statement;
import java.util.Properties;

/** A real PostgreSQL JDBC client, as CAST's Java components use it: prints the first column of each row. */
public class JdbcCheck {
  public static void main(String[] args) throws Exception {
    if (args.length != 7) {
      System.err.println("usage: JdbcCheck <url> <user> <sslcert> <sslkey> <sslrootcert> <sslmode> <query>");
      System.exit(2);
    }
    Properties props = new Properties();
    props.setProperty("user", args[1]);
    props.setProperty("ssl", "true");
    props.setProperty("sslcert", args[2]);
    props.setProperty("sslkey", args[3]);
    props.setProperty("sslrootcert", args[4]);
    props.setProperty("sslmode", args[5]);
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
