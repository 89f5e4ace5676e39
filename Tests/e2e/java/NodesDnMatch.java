import java.util.regex.Pattern;

/**
 * The security plugin's nodes_dn test for one `/regex/` entry (WildcardMatcher.from, RegexMatcher,
 * ignoreCase: Pattern.compile(inner, CASE_INSENSITIVE).matcher(principal).matches()), so a test can
 * check chpki's patterns with Java's own regex engine.
 * Usage: java NodesDnMatch '/regex/' PRINCIPAL...; prints true or false per principal.
 */
public final class NodesDnMatch {
    private NodesDnMatch() {}

    public static void main(String[] args) {
        final String entry = args[0];
        if (entry.length() < 2 || !entry.startsWith("/") || !entry.endsWith("/")) {
            System.err.println("not a /regex/ entry: " + entry);
            System.exit(2);
        }
        final Pattern pattern = Pattern.compile(entry.substring(1, entry.length() - 1), Pattern.CASE_INSENSITIVE);
        for (int i = 1; i < args.length; i++) {
            System.out.println(pattern.matcher(args[i]).matches());
        }
    }
}
