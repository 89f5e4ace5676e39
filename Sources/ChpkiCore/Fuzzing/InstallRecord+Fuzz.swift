import Foundation

extension FuzzEntry {
    /// `chpki rollout-plan` (chpki-rotate's `--state DIR/<fqdn>.json`): the bytes as a recorded
    /// manifest, through the size limit, the JSON schema and every field check, then diffed
    /// against itself and an empty record as the plan does.
    public static func fuzzInstallRecord(_ data: Data) {
        guard let manifest = try? InstallRecord.parse(data, label: "fuzz.json", host: nil) else { return }
        _ = ManifestDiff(recorded: manifest, new: manifest)
        _ = ManifestDiff(recorded: nil, new: manifest)
    }
}
