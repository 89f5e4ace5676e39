import Foundation
import Yams

/// A config snippet a service descriptor renders, and what that service must never accept in it
/// (SPEC §8): `verify --bundle` runs the rules on the snippet as it lies in each tree, whichever
/// template (built-in or override) rendered it, or whoever edited it since. Each descriptor keeps
/// its own rules beside its layout (`ServiceBundle.snippets`); the built-in templates pass them.
public struct Snippet: Sendable {
    /// The template that renders it (without `.mustache`).
    public var template: String
    /// Where it lies in a host tree (several when the path depends on a flavour: those present are checked).
    public var paths: [String]
    /// The findings in the snippet's text.
    public var rules: @Sendable (String) -> [SnippetFinding]

    public init(template: String, paths: [String], rules: @escaping @Sendable (String) -> [SnippetFinding]) {
        self.template = template
        self.paths = paths
        self.rules = rules
    }
}

/// One thing a service must never accept, at a line of the snippet (0: the snippet as a whole,
/// for a setting that is missing).
public struct SnippetFinding: Sendable, Equatable, CustomStringConvertible {
    public var line: Int
    public var rule: String

    public init(line: Int, _ rule: String) {
        self.line = line
        self.rule = rule
    }

    public var description: String { line > 0 ? "line \(line): \(rule)" : rule }
}

/// The shapes snippets come in, read the way their services read them, for the rules to work on.
public enum SnippetSyntax {
    /// Non-blank lines without their `#` comment (outside double quotes), numbered from 1.
    public static func lines(_ text: String) -> [(number: Int, text: String)] {
        var result: [(Int, String)] = []
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var quoted = false
            var kept = ""
            for character in raw {
                if character == "\"" { quoted.toggle() }
                if character == "#" && !quoted { break }
                kept.append(character)
            }
            let trimmed = kept.trimmingCharacters(in: .whitespaces)
            if !trimmed.isEmpty { result.append((index + 1, trimmed)) }
        }
        return result
    }

    /// Whitespace-separated words; a double-quoted word keeps its spaces (pg_hba.conf, haproxy.cfg).
    public static func words(_ line: String) -> [String] {
        var words: [String] = []
        var current = ""
        var quoted = false
        var started = false
        for character in line {
            if character == "\"" {
                quoted.toggle()
                started = true
            } else if (character == " " || character == "\t") && !quoted {
                if started { words.append(current) }
                current = ""
                started = false
            } else {
                current.append(character)
                started = true
            }
        }
        if started { words.append(current) }
        return words
    }

    /// One setting of an environment file (`ETCD_CLIENT_CERT_AUTH=true`, `export X="y"`) or of a
    /// flags file (`--client-cert-auth`, `--client-cert-auth=true`).
    public struct Setting: Sendable {
        public var line: Int
        /// As written (`ETCD_CLIENT_CERT_AUTH`, `--client-cert-auth`).
        public var name: String
        public var value: String
    }

    /// The settings of an environment or flags file; a line that is neither is returned in
    /// `other` (init scripts source such files with a shell, as root: anything else is code).
    public static func environment(_ text: String) -> (settings: [Setting], other: [Int]) {
        var settings: [Setting] = []
        var other: [Int] = []
        for (number, line) in lines(text) {
            let words = line.hasPrefix("export ") ? String(line.dropFirst(7)).trimmingCharacters(in: .whitespaces) : line
            if words.hasPrefix("--") {
                let flag = words.prefix(while: { $0 != "=" && $0 != " " })
                var value = String(words.dropFirst(flag.count)).trimmingCharacters(in: .whitespaces)
                if value.hasPrefix("=") { value.removeFirst() }
                settings.append(Setting(line: number, name: String(flag), value: unquote(value.isEmpty ? "true" : value)))
                continue
            }
            guard let equals = words.firstIndex(of: "="),
                  isName(words[..<equals]) else {
                other.append(number)
                continue
            }
            let value = String(words[words.index(after: equals)...])
            // An unquoted space ends the assignment: a shell runs the rest as a command.
            let quoted = value.first == "\"" || value.first == "'"
            guard !containsShell(value), quoted || !value.contains(where: { $0 == " " || $0 == "\t" }) else {
                other.append(number)
                continue
            }
            settings.append(Setting(line: number, name: String(words[..<equals]), value: unquote(value)))
        }
        return (settings, other)
    }

    /// `ETCD_CLIENT_CERT_AUTH` and `--client-cert-auth` alike: `client-cert-auth` (less `prefix`).
    public static func flagName(_ name: String, prefix: String) -> String {
        if name.hasPrefix("--") { return String(name.dropFirst(2)).lowercased() }
        let bare = name.hasPrefix(prefix) ? String(name.dropFirst(prefix.count)) : name
        return bare.lowercased().replacingOccurrences(of: "_", with: "-")
    }

    /// The last setting of `flag` (the one a shell or etcd keeps), or nil.
    public static func last(_ settings: [Setting], _ flag: String, prefix: String) -> Setting? {
        settings.last { flagName($0.name, prefix: prefix) == flag }
    }

    /// Command substitution or expansion a shell would run when it sources the file.
    static func containsShell(_ value: String) -> Bool {
        value.contains("`") || value.contains("$(") || value.contains(";") || value.contains("&") || value.contains("|")
            || value.contains("<") || value.contains(">")
    }

    private static func isName(_ name: Substring) -> Bool {
        guard let first = name.first, first == "_" || first.isASCII && first.isLetter else { return false }
        return name.allSatisfy { $0 == "_" || $0.isASCII && ($0.isLetter || $0.isNumber) }
    }

    private static func unquote(_ value: String) -> String {
        let trimmed = value.trimmingCharacters(in: .whitespaces)
        if trimmed.count >= 2, let first = trimmed.first, first == "\"" || first == "'", trimmed.last == first {
            return String(trimmed.dropFirst().dropLast())
        }
        return trimmed
    }

    /// One leaf of a YAML document: its dotted key (`restapi.verify_client`, or as OpenSearch
    /// writes them, `plugins.security.ssl.http.enabled`, either spelling giving the same key), its
    /// scalar values (one, or a sequence's items) and the line of each.
    public struct YAMLSetting: Sendable {
        public var key: String
        public var line: Int
        public var values: [(line: Int, value: String)]
    }

    /// The document's leaves, or nil when it is not YAML chpki can check (the finding then says
    /// so): it does not parse, nests deeper than `maxDepth`, or has more than `maxNodes` nodes
    /// once aliases are followed (a "billion laughs" document is small but expands without end).
    public static func yaml(_ text: String, maxDepth: Int = 32, maxNodes: Int = 100_000) -> [YAMLSetting]? {
        guard let root = try? Yams.compose(yaml: text) else { return text.allSatisfy(\.isWhitespace) ? [] : nil }
        var settings: [YAMLSetting] = []
        var budget = maxNodes
        var complete = true
        func walk(_ node: Node, _ key: String, _ line: Int, _ depth: Int) {
            budget -= 1
            guard depth < maxDepth, budget > 0 else {
                complete = false
                return
            }
            switch node {
            case let .mapping(mapping):
                for (name, value) in mapping {
                    let part = name.scalar?.string ?? ""
                    walk(value, key.isEmpty ? part : "\(key).\(part)", name.mark?.line ?? line, depth + 1)
                }
            case let .sequence(sequence):
                var values: [(Int, String)] = []
                for item in sequence {
                    if let scalar = item.scalar { values.append((item.mark?.line ?? line, scalar.string)) }
                    else { walk(item, key, item.mark?.line ?? line, depth + 1) }
                }
                settings.append(YAMLSetting(key: key, line: line, values: values))
            case let .scalar(scalar):
                settings.append(YAMLSetting(key: key, line: line, values: [(node.mark?.line ?? line, scalar.string)]))
            case .alias:
                return
            }
        }
        walk(root, "", 1, 0)
        return complete ? settings : nil
    }

    /// The finding for a snippet that should be YAML and is not.
    public static let notYAML = SnippetFinding(line: 0, "not YAML that chpki can check (it does not parse, or nests or expands beyond any config), so its settings cannot be checked")

    /// `http://` URLs: the services here speak TLS to each other, never plain HTTP.
    public static func plainHTTP(_ value: String) -> Bool { value.lowercased().contains("http://") }

    /// TLS versions below 1.2 as services spell them (SSLv3, TLSv1, TLSv1.0, TLSv1.1, TLS1.1, ...).
    public static func isOldTLS(_ word: String) -> Bool {
        let normalized = word.lowercased().replacingOccurrences(of: "_", with: ".").replacingOccurrences(of: "-", with: "")
        return ["sslv2", "sslv3", "tlsv1", "tlsv1.0", "tlsv10", "tlsv1.1", "tlsv11", "tls1.0", "tls1.1", "tls10", "tls11"].contains(normalized)
    }
}

extension ServiceBundle {
    public var snippets: [Snippet] { [] }
}

extension Snippet {
    /// Every finding in the snippets of `services` as they lie in `tree`: (path, finding).
    package static func findings(in tree: TreeFiles, services: [String]) -> [(path: String, finding: SnippetFinding)] {
        services.flatMap { ServiceBundles.layout(of: $0).snippets }.flatMap { snippet in
            snippet.paths.flatMap { path in (tree.text(path).map(snippet.rules) ?? []).map { (path, $0) } }
        }
    }
}
