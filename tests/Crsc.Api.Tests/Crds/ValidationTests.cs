using Crsc.Api.Kubernetes;
using Crsc.Api.Crds;

namespace Crsc.Api.Tests.Crds;

public sealed class ValidationTests
{
    private static IEnumerable<string> Fields(IReadOnlyList<FieldError> errors) => errors.Select(e => e.Field);

    [Fact]
    public void Samples_are_valid()
    {
        Assert.Empty(Samples.Schedule().Spec.Validate());
        Assert.Empty(Samples.Checkpoint().Spec.Validate());
        Assert.Empty(Samples.Content().Spec.Validate());
        Assert.Empty(Samples.Restore().Spec.Validate());
    }

    [Fact]
    public void Schedule_needs_exactly_one_of_interval_and_cron()
    {
        var spec = Samples.Schedule().Spec;
        spec.Cron = "*/15 * * * *";
        Assert.Equal(["spec"], Fields(spec.Validate()));
        Assert.Contains("exactly one of interval or cron", spec.Validate()[0].Message);
        spec.Interval = null;
        Assert.Empty(spec.Validate());
        spec.Cron = null;
        Assert.Equal(["spec"], Fields(spec.Validate()));
    }

    [Theory]
    [InlineData("abc", "not valid")]
    [InlineData("0s", "greater than zero")]
    [InlineData("0", "greater than zero")]
    [InlineData("5d", "unknown unit")]
    [InlineData("", "empty")]
    public void Schedule_refuses_bad_intervals_naming_the_field(string interval, string message)
    {
        var spec = Samples.Schedule().Spec;
        spec.Interval = interval;
        var error = Assert.Single(spec.Validate());
        Assert.Equal("spec.interval", error.Field);
        Assert.Contains(message, error.Message);
        Assert.Null(spec.IntervalValue);
        Assert.StartsWith("spec.interval: ", error.ToString());
    }

    [Theory]
    [InlineData("*/15 * * * *", true)]
    [InlineData("0 3 * * MON-FRI", true)]
    [InlineData("@daily", true)]
    [InlineData("@every 5m", false)]
    [InlineData("* * * *", false)]
    [InlineData("* * * * * *", false)]
    [InlineData("0 3 * * *\n", false)]
    [InlineData("0;3 * * * *", false)]
    public void Schedule_checks_cron_shape(string cron, bool valid)
    {
        var spec = Samples.Schedule().Spec;
        spec.Interval = null;
        spec.Cron = cron;
        if (valid) Assert.Empty(spec.Validate());
        else Assert.Equal(["spec.cron"], Fields(spec.Validate()));
    }

    [Fact]
    public void Schedule_checks_target_containers_and_retention()
    {
        var spec = Samples.Schedule().Spec;
        spec.Target.Name = "Not_A_Name";
        spec.Target.Kind = (ScheduleTargetKind)42;
        spec.Containers = ["app", "app", "UPPER"];
        spec.Retention = new RetentionPolicy { KeepLast = 0, MaxAge = "-1h", MaxBytes = 0 };
        Assert.Equal(
            ["spec.target.kind", "spec.target.name", "spec.containers[1]", "spec.containers[2]",
             "spec.retention.keepLast", "spec.retention.maxAge", "spec.retention.maxBytes"],
            Fields(spec.Validate()));

        spec = Samples.Schedule().Spec;
        spec.Retention = new RetentionPolicy();
        Assert.Equal(["spec.retention"], Fields(spec.Validate()));
        spec.Containers = Enumerable.Range(0, 33).Select(i => $"c{i}").ToList();
        Assert.Contains("spec.containers", Fields(spec.Validate()));
    }

    [Fact]
    public void Checkpoint_needs_pod_and_container()
    {
        var spec = new ContainerCheckpointSpec();
        Assert.Equal(["spec.podName", "spec.container"], Fields(spec.Validate()));
        spec.PodName = "p";
        spec.Container = new string('a', 64);
        Assert.Equal(["spec.container"], Fields(spec.Validate()));
        spec.Container = "app\n"; // .NET's $ would accept the newline, the API server's RE2 does not
        Assert.Equal(["spec.container"], Fields(spec.Validate()));
    }

    [Fact]
    public void Content_checks_digest_path_and_encryption_key()
    {
        var spec = Samples.Content().Spec;
        spec.Digest = "sha256:" + new string('A', 64);
        spec.Path = "relative/path.tar";
        spec.Encryption!.KeyId = null;
        spec.Source.Namespace = "";
        Assert.Equal(["spec.path", "spec.digest", "spec.encryption", "spec.source.namespace"], Fields(spec.Validate()));

        spec = Samples.Content().Spec;
        spec.Encryption = new ArchiveEncryption { Algorithm = EncryptionAlgorithm.None };
        spec.Digest = "sha256:" + new string('a', 63);
        Assert.Equal(["spec.digest"], Fields(spec.Validate()));
    }

    [Fact]
    public void Restore_checks_attempts_and_optional_names()
    {
        var spec = Samples.Restore().Spec;
        spec.MaxAttempts = 0;
        spec.Container = "";
        spec.CheckpointName = null;
        Assert.Equal(["spec.container", "spec.maxAttempts"], Fields(spec.Validate()));
        spec.Container = null;
        spec.MaxAttempts = 11;
        Assert.Equal(["spec.maxAttempts"], Fields(spec.Validate()));
        spec.MaxAttempts = 10;
        Assert.Empty(spec.Validate());
    }

    [Fact]
    public void Restore_migration_needs_a_pod_target_and_a_target_node_needs_migration()
    {
        Assert.Empty(Samples.Migration().Spec.Validate());
        var spec = Samples.Migration().Spec;
        spec.Target.Kind = RestoreTargetKind.Deployment;
        spec.TargetNode = "Node_2";
        Assert.Equal(["spec.targetNode", "spec.target.kind"], Fields(spec.Validate()));
        spec = Samples.Restore().Spec; // InPlace
        spec.TargetNode = "node-2";
        var error = Assert.Single(spec.Validate());
        Assert.Equal(("spec.targetNode", "is only allowed with spec.mode Migration"), (error.Field, error.Message));
        spec.TargetNode = null;
        spec.Mode = (RestoreMode)7;
        Assert.Equal(["spec.mode"], Fields(spec.Validate()));
    }

    [Fact]
    public void CriuLog_excerpt_keeps_the_end_from_a_line_start()
    {
        Assert.Equal("short", ContainerCheckpointStatus.CriuLogExcerpt("short"));
        var log = string.Join('\n', Enumerable.Range(0, 1000).Select(i => $"({i:D5}) line {i}")) + "\nError: the reason\n";
        var excerpt = ContainerCheckpointStatus.CriuLogExcerpt(log);
        Assert.True(excerpt.Length <= ContainerCheckpointStatus.MaxCriuLogLength);
        Assert.EndsWith("Error: the reason\n", excerpt);
        Assert.StartsWith("(", excerpt);
    }
}

public sealed class ConditionTests
{
    private static readonly DateTimeOffset T0 = new(2025, 5, 20, 10, 0, 0, 500, TimeSpan.Zero);

    [Fact]
    public void Set_adds_then_moves_the_transition_time_only_on_status_change()
    {
        var status = new RestoreStatus();
        Assert.Null(status.FindCondition(ConditionTypes.Ready));
        Assert.True(status.SetCondition(ConditionTypes.Ready, ConditionStatus.False, "Restoring", "attempt 1", 1, T0));
        var c = status.FindCondition(ConditionTypes.Ready)!;
        Assert.Equal(T0.AddMilliseconds(-500), c.LastTransitionTime); // whole seconds, as the API server keeps them
        Assert.False(status.IsConditionTrue(ConditionTypes.Ready));

        // Same status, new message: updated, transition time kept.
        Assert.True(status.SetCondition(ConditionTypes.Ready, ConditionStatus.False, "Restoring", "attempt 2", 1, T0.AddMinutes(1)));
        Assert.Equal("attempt 2", c.Message);
        Assert.Equal(T0.AddMilliseconds(-500), c.LastTransitionTime);

        // Nothing new: no change reported, so no status write is needed.
        Assert.False(status.SetCondition(ConditionTypes.Ready, ConditionStatus.False, "Restoring", "attempt 2", 1, T0.AddMinutes(2)));

        // Status changes: transition time moves.
        Assert.True(status.SetCondition(ConditionTypes.Ready, ConditionStatus.True, "Restored", "", 2, T0.AddMinutes(3)));
        Assert.Equal(T0.AddMinutes(3).AddMilliseconds(-500), c.LastTransitionTime);
        Assert.True(status.IsConditionTrue(ConditionTypes.Ready));
        Assert.Equal(2, c.ObservedGeneration);
        Assert.Single(status.Conditions!);
    }

    [Fact]
    public void Conditions_of_other_types_are_independent_and_removable()
    {
        var status = new CheckpointScheduleStatus();
        status.SetCondition(ConditionTypes.Ready, ConditionStatus.True, "Scheduled", "", null, T0);
        status.SetCondition(ConditionTypes.Degraded, ConditionStatus.True, "InvalidInterval", "interval 'abc' is not valid", null, T0);
        Assert.Equal(2, status.Conditions!.Count);
        Assert.True(status.RemoveCondition(ConditionTypes.Degraded));
        Assert.False(status.RemoveCondition(ConditionTypes.Degraded));
        Assert.True(status.RemoveCondition(ConditionTypes.Ready));
        Assert.Null(status.Conditions); // omitted from JSON again
    }

    [Fact]
    public void Set_requires_type_and_reason() =>
        Assert.Throws<ArgumentException>(() => new RestoreStatus().SetCondition(ConditionTypes.Ready, ConditionStatus.True, "", "", null, T0));

    [Fact]
    public void KubeTime_is_utc_whole_seconds()
    {
        var t = new DateTimeOffset(2025, 5, 20, 12, 0, 0, 999, TimeSpan.FromHours(2));
        Assert.Equal("2025-05-20T10:00:00Z", KubeTime.ToText(t));
        Assert.Equal(TimeSpan.Zero, KubeTime.Truncate(t).Offset);
    }
}
