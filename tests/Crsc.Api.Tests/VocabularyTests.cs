using System.Reflection;

namespace Crsc.Api.Tests;

/// <summary>
/// Pins every public name of crsc's vocabulary to its string: users, manifests, tooling and stored objects carry these
/// strings, so renaming a constant is free but changing (or dropping) a value is a break this test makes visible. A new
/// constant fails here until it is pinned too.
/// </summary>
public sealed class VocabularyTests
{
    private static readonly Dictionary<string, string> Pinned = new()
    {
        ["Annotations.CheckpointRestore"] = "crsc.io/checkpoint-restore",
        ["Annotations.CheckpointInterval"] = "crsc.io/checkpoint-interval",
        ["Annotations.DefaultCheckpointInterval"] = "10m",
        ["Annotations.InterceptorSidecarAttached"] = "crsc.io/interceptor-sidecar-attached",
        ["Annotations.RestoreFrom"] = "crsc.io/restore-from",
        ["Annotations.StaticCheckpoint"] = "crsc.io/static-checkpoint",
        ["Annotations.CoreOsCheckpoint"] = "checkpointer.alpha.coreos.com/checkpoint",
        ["Annotations.CheckpointOf"] = "crsc.io/checkpoint-of",
        ["Annotations.ScheduledFor"] = "crsc.io/scheduled-for",
        ["Annotations.ArchiveId"] = "crsc.io/archive-id",
        ["Annotations.TakenOfflineOn"] = "crsc.io/taken-offline-on",
        ["Annotations.FailedPod"] = "crsc.io/failed-pod",
        ["Annotations.AllowUnauthenticated"] = "crsc.io/allow-unauthenticated",
        ["Annotations.Restore"] = "crsc.io/restore",
        ["Annotations.RestoredFrom"] = "crsc.io/restored-from",
        ["Annotations.OriginalImage"] = "crsc.io/original-image",
        ["Annotations.ReplacedContainer"] = "crsc.io/replaced-container",

        ["Labels.Schedule"] = "crsc.io/schedule",
        ["Labels.Workload"] = "crsc.io/workload",
        ["Labels.Container"] = "crsc.io/container",
        ["Labels.CheckpointUid"] = "crsc.io/checkpoint-uid",

        ["Finalizers.Archive"] = "crsc.io/archive",

        ["CrscApi.Group"] = "crsc.io",
        ["CrscApi.Version"] = "v1alpha1",
        ["CrscApi.GroupVersion"] = "crsc.io/v1alpha1",
    };

    private static readonly Type[] Vocabulary = [typeof(Annotations), typeof(Labels), typeof(Finalizers), typeof(CrscApi)];

    private static Dictionary<string, string> Declared() =>
        Vocabulary.SelectMany(t => t.GetFields(BindingFlags.Public | BindingFlags.Static)
                .Where(f => f.IsLiteral && f.FieldType == typeof(string))
                .Select(f => (Name: $"{t.Name}.{f.Name}", Value: (string)f.GetRawConstantValue()!)))
            .ToDictionary(x => x.Name, x => x.Value);

    [Fact]
    public void Every_public_name_keeps_its_string()
    {
        var declared = Declared();
        Assert.Empty(Pinned.Keys.Except(declared.Keys)); // dropped or renamed: say so here on purpose
        Assert.Empty(declared.Keys.Except(Pinned.Keys)); // new: pin its value
        foreach (var (name, value) in Pinned) Assert.True(value == declared[name], $"{name} is '{declared[name]}', pinned '{value}'");
    }

    [Fact]
    public void No_two_names_share_a_string()
    {
        var shared = Declared().GroupBy(x => x.Value).Where(g => g.Count() > 1).Select(g => string.Join(", ", g.Select(x => x.Key)));
        Assert.Empty(shared);
    }
}
