//! What can go wrong talking to CloudWatch, sorted into the cases a user or a model can act
//! on (no credentials, no region, throttled, access denied, unknown log group, unreachable
//! endpoint, a request CloudWatch rejects), each worded to say how to fix it.

use aws_sdk_cloudwatch::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// A failed CloudWatch or CloudWatch Logs request.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CloudWatchError {
    #[error(
        "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, \
         or run where an instance/task role is available ({detail})"
    )]
    NoCredentials { detail: String },
    #[error(
        "no AWS region configured: set AWS_REGION (or AWS_DEFAULT_REGION, or `region` in the \
         profile in ~/.aws/config)"
    )]
    NoRegion,
    #[error(
        "{operation} was throttled by AWS and still was after {attempts} attempts: retry later or ask for less ({detail})"
    )]
    Throttled {
        operation: &'static str,
        attempts: usize,
        detail: String,
    },
    #[error(
        "{operation}: access denied ({detail}); the credentials need cloudwatch:GetMetricData, \
         cloudwatch:ListMetrics, cloudwatch:GetMetricStatistics, cloudwatch:DescribeAlarms and \
         logs:FilterLogEvents (see the README's IAM policy)"
    )]
    AccessDenied {
        operation: &'static str,
        detail: String,
    },
    #[error(
        "log group `{log_group}` does not exist in this account and region; check the name (it is case-sensitive, e.g. `/aws/lambda/my-fn`)"
    )]
    LogGroupNotFound { log_group: String },
    #[error(
        "{operation}: cannot reach the CloudWatch endpoint ({detail}); check the network, \
         AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_CLOUDWATCH / AWS_ENDPOINT_URL_CLOUDWATCH_LOGS, \
         and AWS_REGION"
    )]
    Unreachable {
        operation: &'static str,
        detail: String,
    },
    #[error("{operation} rejected the request: {detail}")]
    Invalid {
        operation: &'static str,
        detail: String,
    },
    #[error("{operation} failed on the AWS side (HTTP {status}): {detail}")]
    Service {
        operation: &'static str,
        status: u16,
        detail: String,
    },
    #[error("{operation} failed: {detail}")]
    Other {
        operation: &'static str,
        detail: String,
    },
}

/// Error codes AWS uses for "slow down".
const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "RequestThrottled",
    "LimitExceededException",
];

/// Error codes AWS uses for "these credentials may not do that" (or are not valid).
const DENIED_CODES: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "NotAuthorized",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "ExpiredToken",
    "ExpiredTokenException",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
];

impl CloudWatchError {
    /// Worth another attempt after a pause: throttling and AWS-side (5xx) failures.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            CloudWatchError::Throttled { .. } | CloudWatchError::Service { .. }
        )
    }

    /// Sorts an SDK error of `operation` into a case. `log_group` names the group a
    /// ResourceNotFoundException is about (Logs calls only).
    pub fn from_sdk<E>(
        operation: &'static str,
        err: SdkError<E, aws_sdk_cloudwatch::config::http::HttpResponse>,
        log_group: Option<&str>,
    ) -> CloudWatchError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let detail = DisplayErrorContext(&err).to_string();
        match &err {
            SdkError::ServiceError(service) => {
                let code = service.err().code().unwrap_or_default();
                let message = service
                    .err()
                    .message()
                    .map(str::to_string)
                    .unwrap_or_else(|| detail.clone());
                let status = service.raw().status().as_u16();
                by_code(operation, code, status, message, log_group)
            }
            SdkError::ResponseError(response) => {
                let status = response.raw().status().as_u16();
                by_code(operation, "", status, detail, log_group)
            }
            SdkError::TimeoutError(_) => CloudWatchError::Unreachable {
                operation,
                detail: "timed out".into(),
            },
            SdkError::DispatchFailure(failure) => {
                if mentions_credentials(&err) {
                    CloudWatchError::NoCredentials { detail }
                } else if failure.is_io() || failure.is_timeout() {
                    CloudWatchError::Unreachable { operation, detail }
                } else {
                    CloudWatchError::Other { operation, detail }
                }
            }
            _ if mentions_credentials(&err) => CloudWatchError::NoCredentials { detail },
            _ if detail.contains("region") => CloudWatchError::NoRegion,
            _ => CloudWatchError::Other { operation, detail },
        }
    }
}

fn by_code(
    operation: &'static str,
    code: &str,
    status: u16,
    detail: String,
    log_group: Option<&str>,
) -> CloudWatchError {
    if THROTTLING_CODES.contains(&code) || status == 429 {
        CloudWatchError::Throttled {
            operation,
            attempts: 1,
            detail,
        }
    } else if DENIED_CODES.contains(&code) || status == 403 {
        CloudWatchError::AccessDenied { operation, detail }
    } else if code == "ResourceNotFoundException"
        && let Some(group) = log_group
    {
        CloudWatchError::LogGroupNotFound {
            log_group: group.to_string(),
        }
    } else if status >= 500 {
        CloudWatchError::Service {
            operation,
            status,
            detail,
        }
    } else {
        let detail = if code.is_empty() {
            format!("HTTP {status}: {detail}")
        } else {
            format!("{code}: {detail}")
        };
        CloudWatchError::Invalid { operation, detail }
    }
}

/// True when the error's cause chain is about loading credentials.
fn mentions_credentials(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = next {
        let text = e.to_string().to_ascii_lowercase();
        if text.contains("credential") {
            return true;
        }
        next = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_and_server_errors_are_retried_others_are_not() {
        let throttled = by_code("GetMetricData", "Throttling", 400, "slow".into(), None);
        assert!(matches!(throttled, CloudWatchError::Throttled { .. }));
        assert!(throttled.is_retryable());
        assert!(by_code("X", "", 429, "x".into(), None).is_retryable());
        assert!(by_code("X", "InternalFailure", 500, "x".into(), None).is_retryable());
        let denied = by_code("ListMetrics", "AccessDenied", 403, "no".into(), None);
        assert!(!denied.is_retryable());
        assert!(denied.to_string().contains("cloudwatch:ListMetrics"));
        let invalid = by_code("X", "InvalidParameterValue", 400, "bad period".into(), None);
        assert!(!invalid.is_retryable());
        assert!(
            invalid
                .to_string()
                .contains("InvalidParameterValue: bad period")
        );
    }

    #[test]
    fn a_missing_log_group_is_named() {
        let e = by_code(
            "FilterLogEvents",
            "ResourceNotFoundException",
            400,
            "x".into(),
            Some("/app/web"),
        );
        assert!(e.to_string().contains("`/app/web` does not exist"), "{e}");
    }
}
