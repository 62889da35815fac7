namespace Crsc.Cli;

/// <summary>
/// "Did you mean …?" for a mistyped command, option or word: the known names closest to what was typed, by edit
/// distance (insertions, deletions, substitutions and swaps of two neighbours each count one), ignoring case and
/// leading dashes, or that start with it.
/// </summary>
public static class Suggestions
{
    /// <summary>At most this many names are offered.</summary>
    private const int MaxSuggestions = 3;

    /// <summary>The names of <paramref name="known"/> close to <paramref name="typed"/>, closest first; empty when none is.</summary>
    public static IReadOnlyList<string> For(string typed, IEnumerable<string> known)
    {
        var word = Normalize(typed);
        if (word.Length == 0) return [];
        // one edit in a short word changes what it is ("ls" is not "gc"); two in a longer one is a typo
        var limit = word.Length <= 3 ? 1 : 2;
        return known.Distinct(StringComparer.Ordinal)
            .Select(name => (Name: name, Other: Normalize(name)))
            .Select(c => (c.Name, Distance: Distance(word, c.Other), Prefix: word.Length >= 2 && c.Other.StartsWith(word, StringComparison.Ordinal)))
            .Where(c => c.Distance <= limit || c.Prefix)
            .OrderBy(c => c.Distance).ThenBy(c => c.Name, StringComparer.Ordinal)
            .Take(MaxSuggestions)
            .Select(c => c.Name)
            .ToList();
    }

    /// <summary><c>" (did you mean 'checkpoint'?)"</c>, or <c>""</c> when nothing known is close.</summary>
    public static string DidYouMean(string typed, IEnumerable<string> known)
    {
        var names = For(typed, known);
        return names.Count switch
        {
            0 => "",
            1 => $" (did you mean '{names[0]}'?)",
            _ => $" (did you mean {string.Join(", ", names.SkipLast(1).Select(n => $"'{n}'"))} or '{names[^1]}'?)",
        };
    }

    /// <summary>Optimal string alignment distance between <paramref name="a"/> and <paramref name="b"/>.</summary>
    internal static int Distance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (var i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (var j = 0; j <= b.Length; j++) d[0, j] = j;
        for (var i = 1; i <= a.Length; i++)
        {
            for (var j = 1; j <= b.Length; j++)
            {
                var cost = a[i - 1] == b[j - 1] ? 0 : 1;
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + cost);
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                    d[i, j] = Math.Min(d[i, j], d[i - 2, j - 2] + 1);
            }
        }
        return d[a.Length, b.Length];
    }

    private static string Normalize(string name) => name.TrimStart('-').ToLowerInvariant();
}
