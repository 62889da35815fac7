using System.Formats.Tar;
using Crsc.Api.Archives;
using Crsc.Controllers.Storage;

namespace Crsc.Storage;

/// <summary>
/// The metadata files of a CRI checkpoint archive (<see cref="CheckpointArchiveLayout.ConfigDump"/>,
/// <see cref="CheckpointArchiveLayout.SpecDump"/>), kept as their entries stream past and read into the container's facts:
/// one rule for ingest (<see cref="ArchiveInspector"/>, which refuses an archive without them) and <c>crsc inspect</c>
/// (which shows what it finds).
/// </summary>
public sealed class CheckpointMetadata(ArchiveLimits limits)
{
    public byte[]? ConfigDump { get; private set; }
    public byte[]? SpecDump { get; private set; }

    /// <summary>The first metadata file not seen (config before spec), or null when both were.</summary>
    public string? Missing => ConfigDump is null ? CheckpointArchiveLayout.ConfigDump : SpecDump is null ? CheckpointArchiveLayout.SpecDump : null;

    /// <summary>
    /// Keeps the data of a regular-file <paramref name="entry"/> whose checked <paramref name="name"/> (see
    /// <see cref="ArchiveTree.Add"/>) is a metadata file; a later one of the same name replaces an earlier.
    /// </summary>
    /// <returns><see cref="MetadataEntry.Other"/> for any other entry (nothing read), <see cref="MetadataEntry.TooLarge"/> for a
    /// metadata file over <see cref="ArchiveLimits.MaxMetadataBytes"/> (nothing read).</returns>
    /// <exception cref="EndOfStreamException">the archive ends inside the entry</exception>
    public MetadataEntry Read(string name, TarEntry entry)
    {
        if (name is not (CheckpointArchiveLayout.ConfigDump or CheckpointArchiveLayout.SpecDump)) return MetadataEntry.Other;
        if (entry.Length > limits.MaxMetadataBytes) return MetadataEntry.TooLarge;
        var data = new byte[entry.Length];
        entry.DataStream?.ReadExactly(data);
        if (name is CheckpointArchiveLayout.ConfigDump) ConfigDump = data;
        else SpecDump = data;
        return MetadataEntry.Read;
    }

    /// <summary>The container's facts from the files seen (an absent one read as <c>{}</c>).</summary>
    /// <exception cref="ArchiveRejectedException">a file is not a JSON object</exception>
    public ArchiveFacts ReadFacts() => ArchiveInspector.ReadFacts(ConfigDump ?? "{}"u8.ToArray(), SpecDump ?? "{}"u8.ToArray());
}

/// <summary>What <see cref="CheckpointMetadata.Read"/> made of an entry.</summary>
public enum MetadataEntry
{
    /// <summary>Not a metadata file.</summary>
    Other,
    /// <summary>A metadata file, kept.</summary>
    Read,
    /// <summary>A metadata file over the limit, not read.</summary>
    TooLarge,
}
