import Foundation
import Yams
import ChpkiBase
import ChpkiModel
import ChpkiPlatform

/// Typed, line-aware access to a composed YAML tree for the strict inventory reader.
///
/// Every failure is a `ChpkiError.input` naming the file, the line of the offending node and the
/// field path (`hosts[1].ips[0]`), so the operator can go straight to the mistake.
struct YAMLWalker {
    let path: String

    /// One `key: value` pair of a mapping, with the key's node for its line number.
    struct Entry {
        let key: String
        let keyNode: Node
        let value: Node
    }

    // MARK: Errors

    func error(_ code: ChpkiError.Code, _ node: Node?, _ field: String?, _ reason: String) -> ChpkiError {
        ChpkiError.input(code, file: path, line: node?.mark?.line, field: field, reason)
    }

    func error(_ code: ChpkiError.Code, line: Int?, _ field: String?, _ reason: String) -> ChpkiError {
        ChpkiError.input(code, file: path, line: line, field: field, reason)
    }

    /// Converts a Yams parse failure into a one-line error with the line it reports.
    func syntaxError(_ error: Error, yaml: String) -> ChpkiError {
        guard let yamlError = error as? YamlError else {
            return self.error(.inventorySyntax, line: nil, nil, "not valid YAML: \(error)")
        }
        func detail(_ context: YamlError.Context?, _ problem: String) -> String {
            if let context, !context.text.isEmpty { return "\(problem) (\(context.text))" }
            return problem
        }
        switch yamlError {
        case let .scanner(context, problem, mark, _), let .parser(context, problem, mark, _):
            return self.error(.inventorySyntax, line: mark.line, nil, "not valid YAML: \(detail(context, problem))")
        case let .composer(context, problem, mark, _):
            if problem.contains("another document") {
                return self.error(.inventorySyntax, line: mark.line, nil,
                                  "not valid YAML: expected a single document, found another one ('---')")
            }
            return self.error(.inventorySyntax, line: mark.line, nil, "not valid YAML: \(detail(context, problem))")
        case let .reader(problem, offset, _, _):
            let line = offset.map { offset in
                1 + yaml.utf8.prefix(offset).reduce(into: 0) { count, byte in if byte == UInt8(ascii: "\n") { count += 1 } }
            }
            return self.error(.inventorySyntax, line: line, nil, "not valid YAML: \(problem)")
        case let .duplicatedKeysInMapping(duplicates, context):
            let names = duplicates.map { "'\($0)'" }.joined(separator: ", ")
            let line = duplicates.first.flatMap { Self.secondOccurrence(of: $0, in: yaml, from: context.mark.line) } ?? context.mark.line
            return self.error(.inventoryDuplicate, line: line, nil,
                              "duplicate key \(names) in one mapping; each key may appear once")
        default:
            return self.error(.inventorySyntax, line: nil, nil, "not valid YAML: \(yamlError)")
        }
    }

    /// Yams names a duplicated key but only gives the line of its mapping: the line of the key's
    /// second appearance at the indentation of its first, from `line` on (1-based), is the one to fix.
    static func secondOccurrence(of key: String, in yaml: String, from line: Int) -> Int? {
        // Lines as YAML counts them: a CRLF or a lone CR ends one too (Swift's "\r\n" is one
        // Character, not "\n"), so Yams' line is never past the last one here.
        let breaks: Set<Character> = ["\n", "\r", "\r\n", "\u{85}", "\u{2028}", "\u{2029}"]
        let lines = yaml.split(omittingEmptySubsequences: false, whereSeparator: breaks.contains)
        guard line - 1 < lines.count else { return nil }
        var indentation: Int?
        for index in max(0, line - 1)..<lines.count {
            let text = lines[index]
            let indent = text.prefix(while: { $0 == " " }).count
            let rest = text.dropFirst(indent)
            let keyText = rest.hasPrefix("- ") ? rest.dropFirst(2) : rest
            guard keyText.hasPrefix(key), keyText.dropFirst(key.count).drop(while: { $0 == " " }).hasPrefix(":") else { continue }
            if let first = indentation {
                if indent == first { return index + 1 }
            } else {
                indentation = indent
            }
        }
        return nil
    }

    // MARK: Shapes

    /// "a list", "a mapping", "a string 'x'" or "nothing": what was found instead of what was expected.
    func describe(_ node: Node) -> String {
        switch node {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        case let .scalar(scalar):
            if isNull(node) { return "nothing" }
            let text = scalar.string.count > 40 ? String(scalar.string.prefix(40)) + "..." : scalar.string
            return "'\(text)'"
        }
    }

    /// A plain `~`, `null` or empty value (not a quoted "null").
    func isNull(_ node: Node) -> Bool {
        guard case let .scalar(scalar) = node, scalar.style == .plain || scalar.style == .any else { return false }
        return node.null != nil
    }

    /// The pairs of a mapping, in file order; `expected` completes "expected ...".
    func mapping(_ node: Node, _ field: String, expected: String) throws -> [Entry] {
        guard let mapping = node.mapping else {
            throw error(.inventoryWrongType, node, field, "expected \(expected), found \(describe(node))")
        }
        return try mapping.map { key, value in
            guard case let .scalar(scalar) = key else {
                throw error(.inventoryWrongType, key, field, "keys must be plain names, found \(describe(key))")
            }
            return Entry(key: scalar.string, keyNode: key, value: value)
        }
    }

    /// Rejects keys not in `allowed`, suggesting the nearest known one for a likely typo.
    func rejectUnknownKeys(_ entries: [Entry], allowed: [String], parent: String, hints: [String: String] = [:]) throws {
        for entry in entries where !allowed.contains(entry.key) {
            let field = join(parent, entry.key)
            var reason = "unknown key"
            if entry.key == "<<" {
                reason = "YAML merge keys (<<) are not supported; write the keys out"
            } else if let hint = hints[entry.key] {
                reason += "; \(hint)"
            } else if let nearest = KeySuggestion.nearest(to: entry.key, among: allowed) {
                reason += "; did you mean \(nearest)?"
            }
            reason += " (known keys: \(allowed.joined(separator: ", ")))"
            throw error(.inventoryUnknownField, entry.keyNode, field, reason)
        }
    }

    func sequence(_ node: Node, _ field: String, expected: String) throws -> [Node] {
        guard let sequence = node.sequence else {
            throw error(.inventoryWrongType, node, field, "expected \(expected), found \(describe(node))")
        }
        return Array(sequence)
    }

    /// A scalar's text as written (so `C: NO` stays "NO", `validity: 397` is "397").
    func string(_ node: Node, _ field: String, expected: String = "a string") throws -> String {
        guard case let .scalar(scalar) = node, !isNull(node) else {
            throw error(.inventoryWrongType, node, field, "expected \(expected), found \(describe(node))")
        }
        return scalar.string
    }

    func bool(_ node: Node, _ field: String) throws -> Bool {
        guard let value = node.bool else {
            throw error(.inventoryWrongType, node, field, "expected true or false, found \(describe(node))")
        }
        return value
    }

    /// A list of strings; a single string where a list is expected is an error (say `[x]`).
    func stringList(_ node: Node, _ field: String, expected: String) throws -> [(String, Node)] {
        if case .scalar = node, !isNull(node) {
            throw error(.inventoryWrongType, node, field, "expected \(expected), found \(describe(node)); write a list, e.g. [\((try? string(node, field)) ?? "...")]")
        }
        let items = try sequence(node, field, expected: expected)
        return try items.enumerated().map { index, item in
            (try string(item, "\(field)[\(index)]"), item)
        }
    }

    func join(_ parent: String, _ key: String) -> String {
        parent.isEmpty ? key : "\(parent).\(key)"
    }
}

/// Nearest-key suggestions for unknown keys ("extra_sans" -> "extra_san"), and for mistyped
/// command names (`chpki isue`).
public enum KeySuggestion {
    /// The candidate closest to `key`, if it is close enough to be a likely typo.
    public static func nearest(to key: String, among candidates: [String]) -> String? {
        let normalizedKey = normalize(key)
        var best: (candidate: String, distance: Int)?
        for candidate in candidates {
            let distance = editDistance(normalizedKey, normalize(candidate))
            if best == nil || distance < best!.distance { best = (candidate, distance) }
        }
        guard let best else { return nil }
        let limit = max(normalizedKey.count, normalize(best.candidate).count) >= 5 ? 2 : 1
        return best.distance <= limit ? best.candidate : nil
    }

    private static func normalize(_ text: String) -> [Character] {
        Array(text.lowercased().replacingOccurrences(of: "-", with: "_"))
    }

    /// Optimal string alignment distance: insertions, deletions, substitutions, adjacent swaps.
    static func editDistance(_ a: [Character], _ b: [Character]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var table = Array(repeating: Array(repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in 0...a.count { table[i][0] = i }
        for j in 0...b.count { table[0][j] = j }
        for i in 1...a.count {
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                table[i][j] = min(table[i - 1][j] + 1, table[i][j - 1] + 1, table[i - 1][j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    table[i][j] = min(table[i][j], table[i - 2][j - 2] + 1)
                }
            }
        }
        return table[a.count][b.count]
    }
}
