"""Markdown for the results: numbers, ranges, tables and the load-average note under a table."""


def fmt_num(x, digits=0):
    if x is None:
        return "–"
    if digits == 0:
        return "{:,.0f}".format(x)
    return "{:,.{d}f}".format(x, d=digits)


def fmt_range(lo, hi, digits=0):
    if lo is None:
        return "–"
    return "%s–%s" % (fmt_num(lo, digits), fmt_num(hi, digits))


def md_table(header, rows, align=None):
    align = align or ["---"] * len(header)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(str(c) for c in r) + " |")
    return "\n".join(lines)


def load_note(order):
    """The load average at the start of each run, in run order (pairs of variant and load): a shared machine's
    neighbours move single runs, and a table says so."""
    return ("Load average (1, 5, 15 min) at the start of each run, in run order — **this machine is shared with "
            "other jobs**, whose load moves single runs: %s." % "; ".join("%s %s" % (v, la) for v, la in order))
