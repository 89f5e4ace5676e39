/*
 * The principal string that the OpenSearch security plugin computes for a TLS peer certificate,
 * which it then compares with `plugins.security.nodes_dn` (a list of case-insensitive globs, the
 * string taken as is) and `plugins.security.authcz.admin_dn` (LdapName equality).
 *
 * Usage: java OpenSearchPrincipal [--rfc2253] CERT.pem...
 * Prints one principal per certificate, in file order (a file may hold several PEM certificates).
 * Output is UTF-8 whatever the locale.
 *
 * What the plugin does (org.opensearch.security.ssl.transport.DefaultPrincipalExtractor, the same
 * code from the Open Distro fork to OpenSearch 2.x):
 *
 *     String dn = cert.getSubjectX500Principal().toString();      // NOT getName()
 *     List<Rdn> rdns = new ArrayList<>(new LdapName(dn).getRdns());
 *     Collections.reverse(rdns);
 *     dn = String.join(",", rdns.stream().map(r -> r.toString()).collect(toList()));
 *
 * Checked by experiment on OpenJDK 17 (subject encoded C, ST, L, O, OU, CN):
 * - X500Principal.toString() is RFC 1779-like: most specific RDN first, ", " between RDNs, and a
 *   value with special characters is double-quoted: `CN=h, OU="R+D; \"Ops\"", O="Acme, Inc.", C=US`.
 *   getName() (RFC 2253) gives `CN=h,OU=R\+D\; \"Ops\",O=Acme\, Inc.,C=US` instead.
 * - LdapName.getRdns() index 0 is the RIGHTMOST RDN of the string (C=US here, the first one in
 *   the encoding), the last index is CN. Reversing the list therefore puts CN first again.
 * - Rdn.toString() re-escapes the value with a backslash before each of , = + < > # ; " \
 *   ANYWHERE in the value (not only a leading '#', as RFC 4514 would minimally require), and
 *   before a leading or trailing space; non-ASCII characters are left as they are.
 *   E.g. "mid#hash" -> `mid\#hash`, "a=b" -> `a\=b`, "Acme, Inc." -> `Acme\, Inc.`.
 * - The two routes differ for a value with a trailing space: through toString() the quoted value
 *   loses it (`OU=trail space`), through getName() it is kept escaped (`OU=trail space\ `).
 *   For every other value tried (, + ; " \ < > = #, leading space, UTF-8) both routes agree.
 *
 * --rfc2253 takes getName() instead of toString(), for comparison only.
 */

import java.io.FileDescriptor;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.stream.Collectors;
import javax.naming.InvalidNameException;
import javax.naming.ldap.LdapName;
import javax.naming.ldap.Rdn;
import javax.security.auth.x500.X500Principal;

public final class OpenSearchPrincipal {
    private OpenSearchPrincipal() {}

    /** DefaultPrincipalExtractor.extractPrincipal, minus the logging and security manager. */
    static String principal(X509Certificate certificate, boolean rfc2253) throws InvalidNameException {
        final X500Principal subject = certificate.getSubjectX500Principal();
        final String dn = rfc2253 ? subject.getName() : subject.toString();
        final List<Rdn> rdns = new ArrayList<>(new LdapName(dn).getRdns());
        Collections.reverse(rdns);
        return String.join(",", rdns.stream().map(Rdn::toString).collect(Collectors.toList()));
    }

    public static void main(String[] args) throws Exception {
        final PrintStream out = new PrintStream(new FileOutputStream(FileDescriptor.out), true, StandardCharsets.UTF_8);
        final CertificateFactory factory = CertificateFactory.getInstance("X.509");
        boolean rfc2253 = false;
        int count = 0;
        for (String arg : args) {
            if (arg.equals("--rfc2253")) {
                rfc2253 = true;
                continue;
            }
            try (InputStream in = new FileInputStream(arg)) {
                for (Certificate certificate : factory.generateCertificates(in)) {
                    out.println(principal((X509Certificate) certificate, rfc2253));
                    count++;
                }
            }
        }
        if (count == 0) {
            System.err.println("usage: java OpenSearchPrincipal [--rfc2253] CERT.pem... (no certificate read)");
            System.exit(2);
        }
    }
}
