import Foundation
import ChpkiBase
import ChpkiModel
import ChpkiOpenSSL
import ChpkiPlatform
import ChpkiInventory

/// Distinguished names the way the OpenSearch security plugin compares them (ENGINEERING.md):
/// `X500Principal.toString()` parsed into a javax.naming.ldap.LdapName, RDNs most-specific
/// first, each `Rdn.toString()`, joined with `,` and no spaces.
public enum OpenSearchDN {
    /// `CN=backend-1.example.com,OU=...,C=US` with `Rdn.escapeValue`'s escaping.
    public static func string(_ name: DistinguishedName) -> String {
        name.attributes.reversed().map { "\($0.type)=\(escape($0.value))" }.joined(separator: ",")
    }

    /// `javax.naming.ldap.Rdn.escapeValue`: a backslash before each of `,=+<>#;"\` anywhere, and
    /// before leading and trailing whitespace.
    static func escape(_ value: String) -> String {
        let characters = Array(value)
        let lead = characters.firstIndex(where: { !$0.isWhitespace }) ?? characters.count
        let trail = characters.lastIndex(where: { !$0.isWhitespace }) ?? -1
        var out = ""
        for (index, character) in characters.enumerated() {
            if index < lead || index > trail || ",=+<>#;\"\\".contains(character) { out.append("\\") }
            out.append(character)
        }
        return out
    }

    /// The plugin's WildcardMatcher: `/regex/` a case-insensitive whole-string Java regex (the
    /// subset chpki writes: NSRegularExpression agrees on it), a pattern with `*` or `?` a
    /// case-insensitive glob, anything else a case-insensitive exact match.
    public static func matches(pattern: String, _ candidate: String) -> Bool {
        if pattern.count > 1, pattern.hasPrefix("/"), pattern.hasSuffix("/") {
            guard let regex = try? NSRegularExpression(pattern: "^(?:" + pattern.dropFirst().dropLast() + ")$", options: [.caseInsensitive]) else {
                return false
            }
            return regex.firstMatch(in: candidate, range: NSRange(candidate.startIndex..., in: candidate)) != nil
        }
        let pattern = Array(pattern.lowercased())
        let text = Array(candidate.lowercased())
        var p = 0, t = 0, star = -1, mark = 0
        while t < text.count {
            if p < pattern.count, pattern[p] == "?" || pattern[p] == text[t] {
                p += 1
                t += 1
            } else if p < pattern.count, pattern[p] == "*" {
                star = p
                mark = t
                p += 1
            } else if star >= 0 {
                p = star + 1
                mark += 1
                t = mark
            } else {
                return false
            }
        }
        while p < pattern.count, pattern[p] == "*" { p += 1 }
        return p == pattern.count
    }
}

extension OpenSearchDN {
    /// A regex that matches `text` and nothing else, in the syntax Java's Pattern and
    /// NSRegularExpression share: every character that is not a letter, digit or one of `-,= _@:`
    /// gets a backslash (never before a letter, which Java reads as a construct).
    package static func literal(_ text: String) -> String {
        var out = ""
        for character in text {
            if character.isLetter || character.isNumber || "-,= _@:".contains(character) {
                out.append(character)
            } else {
                out += "\\\(character)"
            }
        }
        return out
    }
}
