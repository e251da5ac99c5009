import java.net.URI;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Properties;
import java.util.Set;

/**
 * The driver matrix's JDBC worker (test/integration/driver-matrix.test.ts), for Debian's
 * libpostgresql-jdbc-java: compiled with javac at test time, run with
 * {@code java -cp /usr/share/java/postgresql.jar:DIR JdbcWorker URL TABLE WORKERS TRANSACTIONS [TIMEOUT_SECONDS]},
 * URL being {@code postgres://user:password@host:port/database}.
 *
 * <p>Runs WORKERS threads, each on a connection of its own opened with prepareThreshold=1, so each
 * PreparedStatement becomes a named server-side statement on its first execution and is re-executed by name
 * after that. Each thread runs TRANSACTIONS transactions numbered 0..T-1; every fourth is three autocommit
 * statements, the others are BEGIN; probe; INSERT; count; COMMIT:
 *
 * <ul>
 *   <li>probe: SELECT ?::int + 1, the worker's parity (a literal: even and odd workers prepare two different
 *       texts under pgjdbc's same name, S_1), pg_backend_pid(), and whether the session has this statement in
 *       pg_prepared_statements (true only when it runs as a named prepared statement);
 *   <li>INSERT INTO TABLE (worker, seq, backend) VALUES (?, ?, pg_backend_pid());
 *   <li>count: this worker's rows and the sum of their seq, which must cover every row committed so far.
 * </ul>
 *
 * <p>A thread stops at its first error. Prints one JSON line (errors: the first few distinct messages) and
 * exits 0 only when every transaction ran with the right results; the whole run stops itself after
 * TIMEOUT_SECONDS (default 100).
 */
public final class JdbcWorker {
  private static final String PROBE_MARKER = "matrix-probe-a";
  private static final int MAX_REPORTED_ERRORS = 5;

  private final List<String> errors = new ArrayList<>();
  private final Set<String> messages = new HashSet<>();
  private int errorCount;
  private int transactions;
  private int probeExecutions;
  private int preparedExecutions;

  /** Counts every error; reports the first few distinct messages, each with where it first happened. */
  private synchronized void fail(String worker, String where, String message) {
    errorCount++;
    if (errors.size() < MAX_REPORTED_ERRORS && messages.add(message)) {
      errors.add("worker " + worker + ", " + where + ": " + message);
    }
  }

  private synchronized void counted(int done, int probes, int prepared) {
    transactions += done;
    probeExecutions += probes;
    preparedExecutions += prepared;
  }

  private static final class Mismatch extends Exception {
    private static final long serialVersionUID = 1L;

    Mismatch(String message) {
      super(message);
    }
  }

  private static void expect(String what, long actual, long wanted) throws Mismatch {
    if (actual != wanted) throw new Mismatch(what + ": got " + actual + ", expected " + wanted);
  }

  /** One worker's connection and statements; `pids` are the backends its probe ran on. */
  private final class Worker implements Runnable {
    final int w;
    final String jdbcUrl;
    final Properties props;
    final String table;
    final int count;
    final long deadlineNs;
    final Set<Integer> pids = new HashSet<>();
    /** Even and odd workers prepare two different probe texts (under the same statement names). */
    final int variant;
    int done;
    int probes;
    int prepared;
    int i;
    long committedSum;

    Worker(int w, String jdbcUrl, Properties props, String table, int count, long deadlineNs) {
      this.w = w;
      this.jdbcUrl = jdbcUrl;
      this.props = props;
      this.table = table;
      this.count = count;
      this.deadlineNs = deadlineNs;
      this.variant = w % 2;
    }

    @Override
    public void run() {
      try (Connection conn = DriverManager.getConnection(jdbcUrl, props);
          PreparedStatement probe =
              conn.prepareStatement(
                  "SELECT ?::int + 1 AS next, "
                      + variant
                      + " AS variant, pg_backend_pid() AS pid, EXISTS (SELECT FROM pg_prepared_statements"
                      + " WHERE position('"
                      + PROBE_MARKER
                      + "' in statement) > 0) AS prepared");
          PreparedStatement insert =
              conn.prepareStatement(
                  "INSERT INTO " + table + " (worker, seq, backend) VALUES (?, ?, pg_backend_pid())");
          PreparedStatement tally =
              conn.prepareStatement(
                  "SELECT count(*)::int AS n, coalesce(sum(seq), 0)::int AS total, pg_backend_pid() AS pid FROM "
                      + table
                      + " WHERE worker = ?")) {
        for (i = 0; i < count; i++) {
          if (System.nanoTime() > deadlineNs) {
            throw new Mismatch("out of time after " + i + " of " + count + " transactions");
          }
          boolean autocommit = i % 4 == 3;
          conn.setAutoCommit(autocommit);
          int pid = probe(probe);
          insert(insert);
          int tallyPid = tally(tally);
          if (!autocommit) {
            expect("backend within the transaction", tallyPid, pid);
            conn.commit();
          }
          committedSum += i;
          done++;
        }
      } catch (Exception e) {
        String message = String.valueOf(e.getMessage()).split("\n", 2)[0];
        if (message.length() > 300) message = message.substring(0, 300);
        fail(Integer.toString(w), "transaction " + i, e.getClass().getSimpleName() + ": " + message);
      } finally {
        counted(done, probes, prepared);
      }
    }

    int probe(PreparedStatement st) throws SQLException, Mismatch {
      int value = w * 100_000 + i;
      st.setInt(1, value);
      try (ResultSet rs = st.executeQuery()) {
        if (!rs.next()) throw new Mismatch("probe returned no row");
        expect("probe sum", rs.getInt("next"), value + 1);
        expect("probe variant", rs.getInt("variant"), variant);
        probes++;
        if (rs.getBoolean("prepared")) prepared++;
        int pid = rs.getInt("pid");
        pids.add(pid);
        return pid;
      }
    }

    void insert(PreparedStatement st) throws SQLException, Mismatch {
      st.setInt(1, w);
      st.setInt(2, i);
      expect("inserted rows", st.executeUpdate(), 1);
    }

    int tally(PreparedStatement st) throws SQLException, Mismatch {
      st.setInt(1, w);
      try (ResultSet rs = st.executeQuery()) {
        if (!rs.next()) throw new Mismatch("count returned no row");
        expect("row count", rs.getInt("n"), i + 1);
        expect("seq sum", rs.getInt("total"), committedSum + i);
        return rs.getInt("pid");
      }
    }
  }

  private static String decode(String s) {
    return URLDecoder.decode(s.replace("+", "%2B"), StandardCharsets.UTF_8);
  }

  private static String json(String s) {
    StringBuilder b = new StringBuilder("\"");
    for (char c : s.toCharArray()) {
      if (c == '"' || c == '\\') b.append('\\').append(c);
      else if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
      else b.append(c);
    }
    return b.append('"').toString();
  }

  public static void main(String[] args) throws Exception {
    if (args.length != 4 && args.length != 5) {
      System.err.println("usage: JdbcWorker URL TABLE WORKERS TRANSACTIONS [TIMEOUT_SECONDS]");
      System.exit(2);
    }
    URI uri = new URI(args[0]);
    String table = args[1];
    int workers = Integer.parseInt(args[2]);
    int count = Integer.parseInt(args[3]);
    double timeoutS = args.length == 5 ? Double.parseDouble(args[4]) : 100.0;

    String[] userInfo = uri.getRawUserInfo().split(":", 2);
    Properties props = new Properties();
    props.setProperty("user", decode(userInfo[0]));
    if (userInfo.length == 2) props.setProperty("password", decode(userInfo[1]));
    props.setProperty("prepareThreshold", "1");
    int socketTimeoutS = (int) Math.ceil(timeoutS) + 5;
    props.setProperty("connectTimeout", "10");
    props.setProperty("socketTimeout", Integer.toString(socketTimeoutS));
    props.setProperty("ApplicationName", "pgmux-driver-matrix");
    String jdbcUrl = "jdbc:postgresql://" + uri.getHost() + ":" + uri.getPort() + uri.getRawPath();

    JdbcWorker run = new JdbcWorker();
    long started = System.nanoTime();
    long deadlineNs = started + (long) (timeoutS * 1e9);
    List<Worker> list = new ArrayList<>();
    List<Thread> threads = new ArrayList<>();
    for (int w = 0; w < workers; w++) {
      Worker worker = run.new Worker(w, jdbcUrl, props, table, count, deadlineNs);
      Thread t = new Thread(worker, "worker-" + w);
      t.setDaemon(true);
      list.add(worker);
      threads.add(t);
      t.start();
    }
    long hardDeadlineNs = deadlineNs + 5_000_000_000L;
    int stuck = 0;
    List<Worker> finished = new ArrayList<>();
    for (int w = 0; w < workers; w++) {
      Thread t = threads.get(w);
      long leftMs = Math.max(1, (hardDeadlineNs - System.nanoTime()) / 1_000_000);
      t.join(leftMs);
      // A joined thread's fields are safe to read; a stuck one's are left alone.
      if (t.isAlive()) stuck++;
      else finished.add(list.get(w));
    }
    if (stuck > 0) run.fail("all", "end", stuck + " workers still running after " + (int) (timeoutS + 5) + " s");

    StringBuilder out = new StringBuilder("{");
    int max = 0;
    int min = Integer.MAX_VALUE;
    Set<Integer> all = new HashSet<>();
    synchronized (run) {
      for (Worker worker : finished) {
        max = Math.max(max, worker.pids.size());
        min = Math.min(min, worker.pids.size());
        all.addAll(worker.pids);
      }
      if (finished.isEmpty()) min = 0;
      boolean ok = run.errorCount == 0 && run.transactions == workers * count;
      out.append("\"driver\": \"jdbc\", \"ok\": ").append(ok).append(", \"errors\": [");
      for (int k = 0; k < run.errors.size(); k++) out.append(k == 0 ? "" : ", ").append(json(run.errors.get(k)));
      out.append("], \"errorCount\": ").append(run.errorCount);
      out.append(", \"workers\": ").append(workers);
      out.append(", \"transactions\": ").append(run.transactions);
      out.append(", \"expectedTransactions\": ").append(workers * count);
      out.append(", \"probeExecutions\": ").append(run.probeExecutions);
      out.append(", \"preparedExecutions\": ").append(run.preparedExecutions);
      out.append(", \"distinctBackendPids\": ").append(max);
      out.append(", \"minDistinctBackendPids\": ").append(min);
      out.append(", \"backendPids\": ").append(all.size());
      out.append(", \"elapsedMs\": ").append((System.nanoTime() - started) / 1_000_000);
      out.append("}");
      System.out.println(out);
      System.out.flush();
      // Stuck connections must not keep the process alive.
      Runtime.getRuntime().halt(ok ? 0 : 1);
    }
  }
}
