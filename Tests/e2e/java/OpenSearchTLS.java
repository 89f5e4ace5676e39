/*
 * A mutually authenticated TLS handshake between two OpenSearch "nodes", each loading its PEM files
 * the way the OpenSearch security plugin does (PemKeyReader / SSLConfigConstants), through JSSE only.
 *
 * Usage: java OpenSearchTLS [--protocols P1,P2] SERVER_CERT SERVER_KEY SERVER_CA CLIENT_CERT CLIENT_KEY CLIENT_CA
 *
 * Each *_CERT is a PEM chain (leaf first, as pemcert_filepath), each *_KEY an unencrypted PKCS#8
 * `BEGIN PRIVATE KEY` file (pemkey_filepath), each *_CA the trusted roots (pemtrustedcas_filepath).
 * The server side listens on 127.0.0.1 (ephemeral port) with needClientAuth; the client side
 * connects; both complete the handshake and exchange one line. No hostname verification
 * (enforce_hostname_verification: false), but JSSE's PKIX trust managers check the chain and the
 * extended key usage (serverAuth for the server, clientAuth for the client).
 *
 * Prints, on success (exit 0):
 *     server-peer: <principal of the client's certificate>
 *     client-peer: <principal of the server's certificate>
 *     protocol: <negotiated protocol>
 * where <principal> is computed as the plugin's DefaultPrincipalExtractor does
 * (OpenSearchPrincipal.principal, compiled alongside). Any failure: a message on stderr, exit 1.
 *
 * Key loading follows the plugin: the PEM must hold exactly one block, `-----BEGIN PRIVATE KEY-----`
 * (PKCS#1 `RSA PRIVATE KEY` and SEC1 `EC PRIVATE KEY` are refused, as the plugin's reader fails on
 * them), decoded with PKCS8EncodedKeySpec and tried with KeyFactory RSA, then DSA, then EC.
 */

import java.io.BufferedReader;
import java.io.FileInputStream;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyFactory;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLServerSocket;
import javax.net.ssl.SSLSession;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManagerFactory;

public final class OpenSearchTLS {
    private OpenSearchTLS() {}

    private static final Pattern PEM_BLOCK =
        Pattern.compile("-----BEGIN ([A-Z0-9 ]+)-----([A-Za-z0-9+/=\\s]*?)-----END \\1-----");

    static PrivateKey loadPkcs8(String path) throws Exception {
        final String text = Files.readString(Path.of(path), StandardCharsets.US_ASCII);
        final Matcher m = PEM_BLOCK.matcher(text);
        final List<String[]> blocks = new ArrayList<>();
        while (m.find()) {
            blocks.add(new String[] {m.group(1), m.group(2)});
        }
        if (blocks.size() != 1) {
            throw new IllegalArgumentException(path + ": expected exactly one PEM block, found " + blocks.size());
        }
        if (!blocks.get(0)[0].equals("PRIVATE KEY")) {
            throw new IllegalArgumentException(path + ": not an unencrypted PKCS#8 key (BEGIN " + blocks.get(0)[0] + ")");
        }
        final byte[] der = Base64.getMimeDecoder().decode(blocks.get(0)[1]);
        final PKCS8EncodedKeySpec spec = new PKCS8EncodedKeySpec(der);
        Exception last = null;
        for (String algorithm : new String[] {"RSA", "DSA", "EC"}) {
            try {
                return KeyFactory.getInstance(algorithm).generatePrivate(spec);
            } catch (Exception e) {
                last = e;
            }
        }
        throw new IllegalArgumentException(path + ": PKCS8EncodedKeySpec loads with neither RSA, DSA nor EC", last);
    }

    static X509Certificate[] loadCerts(String path) throws Exception {
        final CertificateFactory factory = CertificateFactory.getInstance("X.509");
        final List<X509Certificate> out = new ArrayList<>();
        try (InputStream in = new FileInputStream(path)) {
            for (Certificate c : factory.generateCertificates(in)) {
                out.add((X509Certificate) c);
            }
        }
        if (out.isEmpty()) {
            throw new IllegalArgumentException(path + ": no certificate");
        }
        return out.toArray(new X509Certificate[0]);
    }

    static SSLContext context(String certPath, String keyPath, String caPath) throws Exception {
        final X509Certificate[] chain = loadCerts(certPath);
        final PrivateKey key = loadPkcs8(keyPath);
        final char[] pass = "changeit".toCharArray();

        final KeyStore ks = KeyStore.getInstance("PKCS12");
        ks.load(null, null);
        ks.setKeyEntry("node", key, pass, chain); // fails if the key does not match chain[0]
        final KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
        kmf.init(ks, pass);

        final KeyStore ts = KeyStore.getInstance("PKCS12");
        ts.load(null, null);
        int i = 0;
        for (X509Certificate ca : loadCerts(caPath)) {
            ts.setCertificateEntry("ca-" + i++, ca);
        }
        final TrustManagerFactory tmf = TrustManagerFactory.getInstance("PKIX");
        tmf.init(ts);

        final SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(kmf.getKeyManagers(), tmf.getTrustManagers(), null);
        return ctx;
    }

    static String peerPrincipal(SSLSession session) throws Exception {
        final Certificate[] peer = session.getPeerCertificates();
        return OpenSearchPrincipal.principal((X509Certificate) peer[0], false);
    }

    public static void main(String[] args) throws Exception {
        String[] protocols = null;
        final List<String> rest = new ArrayList<>();
        for (int i = 0; i < args.length; i++) {
            if (args[i].equals("--protocols")) {
                protocols = args[++i].split(",");
            } else {
                rest.add(args[i]);
            }
        }
        if (rest.size() != 6) {
            System.err.println("usage: java OpenSearchTLS [--protocols P,..] SERVER_CERT SERVER_KEY SERVER_CA CLIENT_CERT CLIENT_KEY CLIENT_CA");
            System.exit(2);
        }
        try {
            run(rest, protocols);
        } catch (Exception e) {
            System.err.println("OpenSearchTLS failed: " + e);
            Throwable c = e.getCause();
            while (c != null) {
                System.err.println("  caused by: " + c);
                c = c.getCause();
            }
            System.exit(1);
        }
    }

    static void run(List<String> a, String[] protocols) throws Exception {
        final SSLContext serverCtx = context(a.get(0), a.get(1), a.get(2));
        final SSLContext clientCtx = context(a.get(3), a.get(4), a.get(5));

        final ExecutorService pool = Executors.newSingleThreadExecutor();
        try (SSLServerSocket server = (SSLServerSocket) serverCtx.getServerSocketFactory()
                .createServerSocket(0, 1, java.net.InetAddress.getByName("127.0.0.1"))) {
            server.setNeedClientAuth(true);
            server.setSoTimeout(20000);
            if (protocols != null) {
                server.setEnabledProtocols(protocols);
            }
            final Future<String> serverSide = pool.submit(() -> {
                try (SSLSocket s = (SSLSocket) server.accept()) {
                    s.setSoTimeout(20000);
                    s.startHandshake();
                    final String seen = peerPrincipal(s.getSession());
                    final BufferedReader r = new BufferedReader(new InputStreamReader(s.getInputStream(), StandardCharsets.UTF_8));
                    final String line = r.readLine();
                    final OutputStream out = s.getOutputStream();
                    out.write(("pong " + line + "\n").getBytes(StandardCharsets.UTF_8));
                    out.flush();
                    return seen;
                }
            });

            final String clientSeen;
            final String protocol;
            try (SSLSocket c = (SSLSocket) clientCtx.getSocketFactory().createSocket("127.0.0.1", server.getLocalPort())) {
                c.setSoTimeout(20000);
                if (protocols != null) {
                    c.setEnabledProtocols(protocols);
                }
                c.startHandshake();
                clientSeen = peerPrincipal(c.getSession());
                protocol = c.getSession().getProtocol();
                final OutputStream out = c.getOutputStream();
                out.write("ping\n".getBytes(StandardCharsets.UTF_8));
                out.flush();
                final BufferedReader r = new BufferedReader(new InputStreamReader(c.getInputStream(), StandardCharsets.UTF_8));
                final String reply = r.readLine();
                if (!"pong ping".equals(reply)) {
                    throw new IllegalStateException("unexpected reply over TLS: " + reply);
                }
            }
            final String serverSeen = serverSide.get(30, TimeUnit.SECONDS);
            System.out.println("server-peer: " + serverSeen);
            System.out.println("client-peer: " + clientSeen);
            System.out.println("protocol: " + protocol);
        } finally {
            pool.shutdownNow();
        }
    }
}
