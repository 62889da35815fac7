using Crsc.Testing.Scenarios;

namespace Crsc.E2E.Tests.Sandbox;

/// <summary>The seed-flow scenario's settings for the E2E tests (kept out of the fixture, which the benchmarks compile too).</summary>
public static class ScenarioSettings
{
    /// <summary>This sandbox and the published binary, working in <paramref name="work"/>.</summary>
    public static CheckpointRestoreScenarioOptions ScenarioOptions(this RealRuntimeFixture sandbox, string work) => new()
    {
        Binary = Binary.PublishedBinary.Path,
        RuntimeEndpoint = sandbox.CriEndpoint,
        Image = sandbox.BusyboxImage,
        CgroupParent = sandbox.CgroupParent,
        WorkDirectory = work,
        ImagesListen = "127.0.0.1:5055",
    };
}
