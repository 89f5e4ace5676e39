/// The rule for a service name, shared by the inventory reader and the one-off `issue server`:
/// a service name becomes a DNS label (`S.<domain>`) and a directory name, so it is 1-63 characters
/// of `a-z`, `0-9` and `-`, neither starting nor ending with `-`.
public enum ServiceName {
    public static let maxLength = HostName.maxLabelLength

    /// Why `name` is not a valid service name, or nil when it is one.
    public static func problem(with name: String) -> String? {
        let valid = !name.isEmpty && name.utf8.count <= maxLength
            && name.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" }
            && !name.hasPrefix("-") && !name.hasSuffix("-")
        return valid ? nil
            : "'\(name)' is not a valid service name: expected a DNS label of lower-case letters, digits and '-', not starting or ending with '-' (it becomes \(name.lowercased()).<domain>)"
    }
}
