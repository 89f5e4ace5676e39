/// RFC 1123 host-name rules as chpki applies them to `domain`, host names, VIP names and `extra_san`.
///
/// A name is one or more labels joined by dots; each label is 1-63 characters of `a-z`, `0-9` and
/// `-`, neither starting nor ending with `-`; the whole is at most 253 characters, has no trailing
/// dot, and its last label is not all digits (so an IPv4 address is never taken for a name).
/// Comparison is case-insensitive, so names are stored lower-cased.
public enum HostName {
    public static let maxLength = 253
    public static let maxLabelLength = 63

    /// Why `name` is not a valid RFC 1123 name, or nil when it is one. Checks the text as given
    /// (upper case is allowed; callers lower-case valid names).
    public static func problem(with name: String) -> String? {
        if name.isEmpty { return "must not be empty" }
        if name.hasSuffix(".") { return "'\(name)' must not end with a dot" }
        if name.hasPrefix(".") { return "'\(name)' must not start with a dot" }
        if name.utf8.count > maxLength { return "'\(name)' is longer than \(maxLength) characters" }
        if name.hasPrefix("*") { return "'\(name)': wildcard names are not allowed" }
        let labels = name.split(separator: ".", omittingEmptySubsequences: false)
        for label in labels {
            if let reason = labelProblem(label) { return "'\(name)': \(reason)" }
        }
        if let last = labels.last, last.allSatisfy({ $0.isASCII && $0.isNumber }) {
            return "'\(name)' looks like an IP address, not a host name (its last label is all digits)"
        }
        return nil
    }

    /// Why `label` is not one valid RFC 1123 label, or nil.
    public static func labelProblem<S: StringProtocol>(_ label: S) -> String? {
        if label.isEmpty { return "empty label (two dots in a row)" }
        if label.utf8.count > maxLabelLength { return "label '\(label)' is longer than \(maxLabelLength) characters" }
        for scalar in label.unicodeScalars where !isLabelScalar(scalar) {
            let shown = scalar.properties.isWhitespace || scalar.value < 0x20 ? "whitespace or a control character"
                : "'\(scalar)'"
            return "label '\(label)' contains \(shown); only letters a-z, digits and '-' are allowed"
        }
        if label.hasPrefix("-") || label.hasSuffix("-") {
            return "label '\(label)' must not start or end with '-'"
        }
        return nil
    }

    /// True when `name` is a valid name (see `problem(with:)`).
    public static func isValid(_ name: String) -> Bool { problem(with: name) == nil }

    /// True when `name` is `domain` itself or a name below it (both lower-cased).
    public static func name(_ name: String, isWithin domain: String) -> Bool {
        name == domain || name.hasSuffix("." + domain)
    }

    private static func isLabelScalar(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar {
        case "a"..."z", "A"..."Z", "0"..."9", "-": return true
        default: return false
        }
    }
}
