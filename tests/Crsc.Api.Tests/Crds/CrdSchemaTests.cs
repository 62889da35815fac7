using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization.Metadata;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;

namespace Crsc.Api.Tests.Crds;

/// <summary>The CRD YAML under packaging/kubernetes/crds: valid, structural, and equal to the C# types.</summary>
public sealed class CrdSchemaTests
{
    public static TheoryData<string> Kinds => new() { "CheckpointSchedule", "ContainerCheckpoint", "ContainerCheckpointContent", "Restore", "CheckpointNode" };

    private static JsonObject Schema(JsonObject crd) =>
        (JsonObject)crd["spec"]!["versions"]![0]!["schema"]!["openAPIV3Schema"]!;

    private static (JsonTypeInfo Info, string Plural, bool Namespaced, JsonNode Sample) Expected(string kind) => kind switch
    {
        "CheckpointSchedule" => (CrscResources.CheckpointSchedules.Json, CrscResources.CheckpointSchedules.Plural, true,
            JsonSerializer.SerializeToNode(Samples.Schedule(), CrscResources.CheckpointSchedules.Json)!),
        "ContainerCheckpoint" => (CrscResources.ContainerCheckpoints.Json, CrscResources.ContainerCheckpoints.Plural, true,
            JsonSerializer.SerializeToNode(Samples.Checkpoint(), CrscResources.ContainerCheckpoints.Json)!),
        "ContainerCheckpointContent" => (CrscResources.ContainerCheckpointContents.Json, CrscResources.ContainerCheckpointContents.Plural, false,
            JsonSerializer.SerializeToNode(Samples.Content(), CrscResources.ContainerCheckpointContents.Json)!),
        "Restore" => (CrscResources.Restores.Json, CrscResources.Restores.Plural, true,
            JsonSerializer.SerializeToNode(Samples.Restore(), CrscResources.Restores.Json)!),
        "CheckpointNode" => (CrscResources.CheckpointNodes.Json, CrscResources.CheckpointNodes.Plural, false,
            JsonSerializer.SerializeToNode(Samples.Node(), CrscResources.CheckpointNodes.Json)!),
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    [Fact]
    public void There_is_one_file_per_crd_named_after_it()
    {
        var files = RepoFiles.CrdFiles;
        Assert.Equal(5, files.Count);
        foreach (var file in files)
        {
            var crd = (JsonObject)YamlTree.LoadSingle(File.ReadAllText(file))!;
            Assert.Equal((string?)crd["metadata"]!["name"] + ".yaml", Path.GetFileName(file));
        }
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Crd_is_a_valid_structural_schema(string kind)
    {
        var errors = StructuralSchemaChecker.Check(RepoFiles.LoadCrd(kind));
        Assert.True(errors.Count == 0, string.Join("\n", errors));
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Crd_matches_the_csharp_type(string kind)
    {
        var crd = RepoFiles.LoadCrd(kind);
        var (info, plural, namespaced, _) = Expected(kind);
        var errors = DriftChecker.Compare(info, Schema(crd));
        Assert.True(errors.Count == 0, string.Join("\n", errors));
        Assert.Equal(plural, (string?)crd["spec"]!["names"]!["plural"]);
        Assert.Equal(namespaced ? "Namespaced" : "Cluster", (string?)crd["spec"]!["scope"]);
        Assert.Equal(CrscApi.Group, (string?)crd["spec"]!["group"]);
        Assert.Equal(CrscApi.Version, (string?)crd["spec"]!["versions"]![0]!["name"]);
        Assert.Equal(["crsc"], crd["spec"]!["names"]!["categories"]!.AsArray().Select(n => (string?)n));
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Fully_populated_csharp_objects_validate_against_the_schema(string kind)
    {
        var errors = SchemaValidator.Validate(Expected(kind).Sample, Schema(RepoFiles.LoadCrd(kind)));
        Assert.True(errors.Count == 0, string.Join("\n", errors));
    }

    [Theory]
    [InlineData("ContainerCheckpoint", "ckpt", "Phase,Pod,Container,Node,Size,Age")]
    [InlineData("CheckpointSchedule", "cks", "Kind,Target,Interval,Suspended,Last,Age")]
    [InlineData("ContainerCheckpointContent", "ckptc", "Node,Namespace,Pod,Container,Size,Policy,Age")]
    [InlineData("Restore", "rst", "Kind,Target,Container,Phase,Attempts,Checkpoint,Age")]
    [InlineData("CheckpointNode", "ckn", "Runtime,Checkpoint,Restore,Checkpoints,Store,Age")]
    public void Kubectl_get_shows_the_designed_columns(string kind, string shortName, string columns)
    {
        var crd = RepoFiles.LoadCrd(kind);
        Assert.Equal([shortName], crd["spec"]!["names"]!["shortNames"]!.AsArray().Select(n => (string?)n));
        var shown = crd["spec"]!["versions"]![0]!["additionalPrinterColumns"]!.AsArray()
            .Where(c => c!["priority"] is null || (long)c["priority"]! == 0)
            .Select(c => (string?)c!["name"]);
        Assert.Equal(columns.Split(','), shown);
    }

    [Fact]
    public void Patterns_are_the_ones_the_csharp_validation_uses()
    {
        var known = new HashSet<string>
        {
            GoDuration.Pattern, Check.DnsSubdomainPattern, Check.DnsLabelPattern, Check.DigestPattern, Check.CronPattern, "^/",
            // metav1.Condition's own type and reason patterns
            @"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
            "^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
        };
        var found = new List<string>();
        foreach (var kind in Kinds) Collect(Schema(RepoFiles.LoadCrd(kind)), "", found);
        Assert.NotEmpty(found);
        foreach (var entry in found)
        {
            var pattern = entry[(entry.IndexOf('=') + 1)..];
            Assert.True(known.Contains(pattern), $"{entry} is not a pattern the C# validation knows");
        }
        // And the duration fields use the duration pattern, the digests the digest pattern.
        Assert.Contains($"spec.interval={GoDuration.Pattern}", found);
        Assert.Contains($"spec.retention.maxAge={GoDuration.Pattern}", found);
        Assert.Contains($"spec.digest={Check.DigestPattern}", found);
        Assert.Contains($"status.digest={Check.DigestPattern}", found);
        Assert.Contains($"spec.cron={Check.CronPattern}", found);

        static void Collect(JsonObject node, string path, List<string> found)
        {
            if (StructuralSchemaChecker.Str(node, "pattern") is { } p) found.Add($"{path}={p}");
            if (node["properties"] is JsonObject props)
                foreach (var (k, v) in props) Collect((JsonObject)v!, path.Length == 0 ? k : $"{path}.{k}", found);
            if (node["items"] is JsonObject items) Collect(items, path + "[]", found);
        }
    }

    [Fact]
    public void Limits_match_the_csharp_constants()
    {
        var schedule = Schema(RepoFiles.LoadCrd("CheckpointSchedule"))["properties"]!["spec"]!["properties"]!;
        Assert.Equal(CheckpointScheduleSpec.MaxContainers, (long)schedule["containers"]!["maxItems"]!);
        Assert.Equal(RetentionPolicy.MaxKeepLast, (long)schedule["retention"]!["properties"]!["keepLast"]!["maximum"]!);
        Assert.Equal(RetentionPolicy.DefaultKeepLast, (long)schedule["retention"]!["default"]!["keepLast"]!);
        Assert.Equal(GoDuration.MaxLength, (long)schedule["interval"]!["maxLength"]!);
        var restore = Schema(RepoFiles.LoadCrd("Restore"))["properties"]!["spec"]!["properties"]!;
        Assert.Equal(RestoreSpec.MaxMaxAttempts, (long)restore["maxAttempts"]!["maximum"]!);
        var restoreStatus = Schema(RepoFiles.LoadCrd("Restore"))["properties"]!["status"]!["properties"]!;
        Assert.Equal(RestoreStatus.MaxSourcePodLength, (long)restoreStatus["sourcePod"]!["maxLength"]!);
        var ckpt = Schema(RepoFiles.LoadCrd("ContainerCheckpoint"))["properties"]!["status"]!["properties"]!;
        Assert.Equal(ContainerCheckpointStatus.MaxCriuLogLength, (long)ckpt["criuLog"]!["maxLength"]!);
        var content = Schema(RepoFiles.LoadCrd("ContainerCheckpointContent"))["properties"]!["spec"]!["properties"]!;
        Assert.Equal(ContainerCheckpointContentSpec.MaxPathLength, (long)content["path"]!["maxLength"]!);
        Assert.Equal(ArchiveEncryption.MaxKeyIdLength, (long)content["encryption"]!["properties"]!["keyId"]!["maxLength"]!);
    }

    [Theory]
    [InlineData("ContainerCheckpoint", "spec", "self == oldSelf")]
    [InlineData("Restore", "spec", "self == oldSelf")]
    [InlineData("Restore", "spec", "!has(self.targetNode) || (has(self.mode) && self.mode == 'Migration')")]
    [InlineData("Restore", "spec", "!has(self.mode) || self.mode != 'Migration' || self.target.kind == 'Pod'")]
    [InlineData("CheckpointSchedule", "spec", "has(self.interval) != has(self.cron)")]
    [InlineData("CheckpointSchedule", "spec.interval", "self.matches('[1-9]')")]
    [InlineData("CheckpointSchedule", "spec.retention", "has(self.keepLast) || has(self.maxAge) || has(self.maxBytes)")]
    [InlineData("ContainerCheckpointContent", "spec.digest", "self == oldSelf")]
    [InlineData("ContainerCheckpointContent", "spec.source", "self == oldSelf")]
    [InlineData("ContainerCheckpointContent", "spec.encryption", "self.algorithm == 'none' || has(self.keyId)")]
    public void Cel_rules_guard_dependent_and_immutable_fields(string kind, string path, string rule)
    {
        JsonNode node = Schema(RepoFiles.LoadCrd(kind));
        foreach (var segment in path.Split('.')) node = node["properties"]![segment]!;
        Assert.Contains(rule, node["x-kubernetes-validations"]!.AsArray().Select(r => (string?)r!["rule"]));
    }

    [Fact]
    public void Duration_zero_rule_and_parser_agree()
    {
        // CEL cannot call GoDuration; the schema's "greater than zero" rule is "has a non-zero digit".
        foreach (var text in new[] { "0", "0s", "00m0.000s", "0.0h", "1ns", "0.1s", "300", "1h0m" })
            Assert.Equal(System.Text.RegularExpressions.Regex.IsMatch(text, "[1-9]"), GoDuration.Parse(text) > TimeSpan.Zero);
    }
}
