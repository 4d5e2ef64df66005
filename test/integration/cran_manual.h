/*
 * cran_manual.h - a CRAN-like package manual of nine pages (the SuppDists package's kind of
 * text: URLs, e-mail addresses, calls, options, paths and formulas among the prose), the
 * document on which the offline provider once blanked inside URLs. Shared by the offline
 * integration tests and the quality report (bench/quality), which build it into a PDF with
 * cran_manual_pdf (pdf_testpdf_build after cran_wrap has cut each page into lines).
 */
#ifndef TEST_CRAN_MANUAL_H
#define TEST_CRAN_MANUAL_H

#include <stddef.h>
#include <string.h>

#include "cm/buf.h"
#include "../../svc-pdf/testpdf.h"

/* A CRAN-like package manual: the kind of text the offline provider once blanked inside URLs. */
static const char *const cran_manual[] = {
    "Package 'SuppDists' version 1.1-9.7. Title: Supplementary Distributions. Maintainer: Bob "
    "Wheeler <bwheelerg@gmail.com>. The package is available from "
    "https://CRAN.R-project.org/package=SuppDists and depends on R (>= 3.5.0). Ten distributions "
    "supplementing those built into R are given here. The Kendall and Spearman distributions are "
    "exact for small samples and use an approximation for larger ones. Inverse Gauss, "
    "Kruskal-Wallis, Friedman and the normal scores distributions are included. The Johnson "
    "system of distributions is fitted by moments or by quantiles.",
    "Friedman's chi-squared distribution arises in the analysis of randomized block designs. "
    "Usage: dFriedman(x, r, N, log = FALSE) and pFriedman(q, r, N, lower.tail = TRUE). The "
    "argument r is the number of treatments and N is the number of replications in each block. "
    "The statistic is computed from the ranks within each block, so the test needs no "
    "assumption of normality. For large values of N the Friedman statistic approaches a "
    "chi-squared distribution with r - 1 degrees of freedom. See "
    "http://www.jstor.org/stable/2279372 for the original paper by Milton Friedman from 1937.",
    "The inverse Gaussian distribution describes the first passage time of Brownian motion with "
    "positive drift. Its density is f(x) = sqrt(lambda/(2*pi*x^3)) * "
    "exp(-lambda*(x-nu)^2/(2*nu^2*x)) for x > 0. The parameter nu is the mean and lambda is the "
    "shape parameter of the distribution. When lambda grows large, the inverse Gaussian "
    "distribution becomes close to a normal distribution. Random values are generated with "
    "rinvGauss(n, nu, lambda) using the method of Michael, Schucany and Haas. The variance of "
    "the distribution equals nu^3/lambda, so a larger shape gives a tighter distribution.",
    "Kendall's tau is a rank correlation coefficient that counts concordant and discordant "
    "pairs. The exact distribution of Kendall's tau is computed by a recursion for samples of up "
    "to 50 observations. For larger samples a Pearson curve is fitted to the first four "
    "moments. The functions dKendall, pKendall and qKendall take the sample size N as their "
    "second argument. Call pKendall(0.5, N = 10, lower.tail = FALSE) to obtain an upper tail "
    "probability. Ties are not handled by these functions, and the user must remove them before "
    "the computation.",
    "Spearman's rho measures how well the relation between two variables can be described by a "
    "monotonic function. The exact distribution of Spearman's rho is computed by enumeration "
    "for samples of up to 9 observations. Beyond that size an Edgeworth series approximation "
    "gives probabilities accurate to about 4 decimal places. The statistic equals 1 - "
    "6*sum(d^2)/(N*(N^2-1)) where d holds the rank differences. Set the option "
    "options(SuppDists.exact = TRUE) to force the enumeration. Charles Spearman introduced the "
    "coefficient in 1904 in the American Journal of Psychology.",
    "The Johnson system consists of four families of distributions: the normal, the lognormal, "
    "the unbounded and the bounded families. A Johnson distribution is a transformation of a "
    "normal variable that matches a given skewness and kurtosis. The function JohnsonFit(t, "
    "moment = \"quant\") selects the family from four quantiles of the data. The fitted "
    "parameters are gamma, delta, xi and lambda, stored in a list that other functions accept. "
    "Norman Johnson proposed the system in 1949 in the journal Biometrika. Files written by the "
    "fitting routine go to ~/R/SuppDists/fits.csv unless another path is set.",
    "The Kruskal-Wallis statistic tests whether samples come from the same distribution without "
    "assuming normal errors. It generalises the Mann-Whitney test to more than two groups of "
    "observations. The distribution is computed for c groups with n observations each, where c "
    "is at most 5 and n at most 8. For other designs the statistic is approximated by a beta "
    "distribution with matched moments. The normal scores test replaces ranks by expected normal "
    "order statistics and is more powerful for normal data. Questions about the package should "
    "be sent to the maintainer at bwheelerg@gmail.com, not to R-help@r-project.org.",
    "The maximum F ratio of Hartley compares the largest and smallest of k sample variances. "
    "Hartley's test assumes normal populations and equal sample sizes of df + 1 observations. "
    "Critical values at the 5 percent and 1 percent levels were tabulated by Pearson and "
    "Hartley in 1954. The function qmaxFratio(p, df, k) returns quantiles, and pmaxFratio "
    "returns the cumulative probability. A ratio above the critical value suggests that the "
    "variances differ between groups. The computation integrates over the chi-squared density "
    "with a Gauss-Legendre rule of 64 points, which takes about 2 milliseconds.",
    "Pearson's correlation coefficient under the null hypothesis has a distribution that "
    "depends only on the sample size. The package computes its density, distribution function "
    "and quantiles for samples of 3 to 1000 observations. Random correlation coefficients are "
    "generated by transforming beta variates, which is faster than sampling bivariate normal "
    "pairs. The ghyper functions cover the generalized hypergeometric distributions, including "
    "the beta-binomial and negative hypergeometric cases. Each function checks its arguments and "
    "returns NA with a warning when a parameter lies outside its range. The source code is at "
    "https://github.com/cran/SuppDists and carries the GPL-2 licence.",
};
#define CRAN_MANUAL_PAGES (sizeof(cran_manual) / sizeof(cran_manual[0]))

/* Text wrapped into lines of at most 90 bytes at spaces (a page's lines, '\n' between). */
static __attribute__((unused)) void
cran_wrap(const char *in, char *out, size_t n)
{
	size_t o = 0, line = 0;

	for (const char *p = in; *p != '\0' && o + 2 < n; p++) {
		if (*p == ' ' && line > 75) {
			out[o++] = '\n';
			line = 0;
			continue;
		}
		out[o++] = *p;
		line++;
	}
	out[o] = '\0';
}

/* The manual as a PDF, its title `title`, appended to b (initialised by the caller). Not
 * thread-safe: the wrapped pages are kept in a static buffer. */
static __attribute__((unused)) cm_err
cran_manual_pdf(const char *title, cm_buf *b)
{
	static char pages[CRAN_MANUAL_PAGES][2048];
	const char *pv[CRAN_MANUAL_PAGES];
	pdf_testpdf o;

	for (size_t i = 0; i < CRAN_MANUAL_PAGES; i++) {
		cran_wrap(cran_manual[i], pages[i], sizeof(pages[i]));
		pv[i] = pages[i];
	}
	memset(&o, 0, sizeof(o));
	o.npages = (int)CRAN_MANUAL_PAGES;
	o.pages = pv;
	o.title = title;
	return pdf_testpdf_build(&o, b);
}

#endif
