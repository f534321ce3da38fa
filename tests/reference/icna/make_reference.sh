#!/bin/sh
# Independent reference for exprlmm's ICNA / FGA / segment counts, computed with awk
# straight from the fixture files (no exprlmm, no pandas), one line per segment.
#
#   ICNA (log2)    = sum over segments of (end - start + 1) * |v|
#   ICNA (linear)  = sum over segments of (end - start + 1) * |2^v - 1|
#   ICNA (noX)     = ICNA (log2) without chromosome X (written 23 or X)
#   ICNA (min0.3)  = ICNA (log2) counting only segments with |v| >= 0.3
#   FGA            = length with |v| > 0.2 / total length
#   n_segments     = number of segments
#
# Run from the repository root:  sh tests/reference/icna/make_reference.sh
# Output: tests/reference/icna/icna_awk.tsv (generated with mawk 1.3.4 20200120).
set -eu
here=$(dirname "$0")
data="$here/../../data/seg"
out="$here/icna_awk.tsv"

# args: file label, sample column (0 = fixed name), fixed name, chrom, start, end, value col.
score() {
    awk -F'\t' -v label="$1" -v sc="$2" -v fixed="$3" -v cc="$4" -v bc="$5" -v ec="$6" -v vc="$7" '
        /^@/ || /^#/ { next }
        !seen_header { seen_header = 1; next }
        {
            s = (sc == 0) ? fixed : $sc
            if (!(s in n)) { order[++k] = s }
            len = $ec - $bc + 1
            v = $vc + 0
            a = (v < 0) ? -v : v
            lin = 2 ^ v - 1; if (lin < 0) lin = -lin
            n[s] += 1
            log2sum[s] += len * a
            linsum[s] += len * lin
            if ($cc != "23" && $cc != "X") nox[s] += len * a
            if (a >= 0.3) min03[s] += len * a
            total[s] += len
            if (a > 0.2) altered[s] += len
        }
        END {
            for (i = 1; i <= k; i++) {
                s = order[i]
                printf "%s\t%s\t%.17g\t%.17g\t%.17g\t%.17g\t%.17g\t%d\n", label, s, log2sum[s], linsum[s], nox[s] + 0, min03[s] + 0, altered[s] / total[s], n[s]
            }
        }'
}

{
    printf "file\tsample\ticna_log2\ticna_linear\ticna_log2_noX\ticna_log2_min0.3\tfga\tn_segments\n"
    score acc_subset.seg 1 "" 2 3 4 6 < "$data/acc_subset.seg"
    score example_seg.txt 1 "" 2 3 4 6 < "$data/example_seg.txt"
    score issue192_tumor.seg 1 "" 2 3 4 6 < "$data/issue192_tumor.seg"
    score coriell_DNAcopy_CBS_segments_DERIVED.seg 1 "" 2 3 4 6 < "$data/coriell_DNAcopy_CBS_segments_DERIVED.seg"
    score brca_gdc_subset.seg.tsv 1 "" 2 3 4 6 < "$data/brca_gdc_subset.seg.tsv"
    # GATK4 modelFinal: no sample column (sample from @RG SM:Sample1), value = column 7
    # LOG2_COPY_RATIO_POSTERIOR_50.
    gzip -dc "$data/example_gatk4_modelfinal.seg.gz" | score example_gatk4_modelfinal.seg.gz 0 Sample1 1 2 3 7
} > "$out"
echo "wrote $out"
