//! The AWS implementation of [`CloudApi`] (cargo feature `aws`): STS for the identity in
//! effect, EC2 `DescribeInstanceTypes` for the GPU check, `RebootInstances`.

use aws_sdk_ec2::error::DisplayErrorContext;
use aws_sdk_ec2::types::InstanceType;
use futures_util::future::BoxFuture;
use lablink_actors::provisioning::cloud::{CloudApi, CloudError, CloudIdentity};

use crate::config::ProviderConfig;

/// EC2 and STS clients sharing one AWS configuration.
#[derive(Debug, Clone)]
pub struct AwsCloud {
    ec2: aws_sdk_ec2::Client,
    sts: aws_sdk_sts::Client,
}

impl AwsCloud {
    /// Clients from the usual AWS sources, with the region and endpoint the configuration
    /// gives.
    pub async fn new(provider: &ProviderConfig) -> Self {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        let region = provider
            .aws
            .region
            .clone()
            .or_else(|| provider.terraform.variables.get("region").cloned());
        if let Some(region) = region {
            loader = loader.region(aws_config::Region::new(region));
        }
        if let Some(endpoint) = &provider.aws.endpoint_url {
            loader = loader.endpoint_url(endpoint);
        }
        let shared = loader.load().await;
        AwsCloud {
            ec2: aws_sdk_ec2::Client::new(&shared),
            sts: aws_sdk_sts::Client::new(&shared),
        }
    }
}

impl AwsCloud {
    /// Clients for one endpoint with fixed credentials (a stand-in API, as in the tests).
    pub async fn for_endpoint(
        endpoint: &str,
        region: &str,
        access_key: &str,
        secret: &str,
    ) -> Self {
        let credentials =
            aws_sdk_ec2::config::Credentials::new(access_key, secret, None, None, "lablink-static");
        let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(region.to_owned()))
            .endpoint_url(endpoint)
            .credentials_provider(credentials)
            .load()
            .await;
        AwsCloud {
            ec2: aws_sdk_ec2::Client::new(&shared),
            sts: aws_sdk_sts::Client::new(&shared),
        }
    }
}

fn cloud_error(err: impl std::error::Error) -> CloudError {
    CloudError(DisplayErrorContext(err).to_string())
}

impl CloudApi for AwsCloud {
    fn identity(&self) -> BoxFuture<'static, Result<CloudIdentity, CloudError>> {
        let sts = self.sts.clone();
        Box::pin(async move {
            let out = sts
                .get_caller_identity()
                .send()
                .await
                .map_err(cloud_error)?;
            Ok(CloudIdentity {
                account: out.account().unwrap_or_default().to_owned(),
                arn: out.arn().unwrap_or_default().to_owned(),
            })
        })
    }

    fn has_nvidia_gpu(&self, instance_type: &str) -> BoxFuture<'static, Result<bool, CloudError>> {
        let (ec2, instance_type) = (self.ec2.clone(), instance_type.to_owned());
        Box::pin(async move {
            let out = ec2
                .describe_instance_types()
                .instance_types(InstanceType::from(instance_type.as_str()))
                .send()
                .await
                .map_err(cloud_error)?;
            let info = out.instance_types().first().ok_or_else(|| {
                CloudError(format!(
                    "AWS does not know the instance type `{instance_type}`"
                ))
            })?;
            Ok(info.gpu_info().is_some_and(|gpus| {
                gpus.gpus().iter().any(|gpu| {
                    gpu.manufacturer()
                        .is_some_and(|m| m.eq_ignore_ascii_case("nvidia"))
                })
            }))
        })
    }

    fn reboot(&self, instance_id: &str) -> BoxFuture<'static, Result<(), CloudError>> {
        let (ec2, instance_id) = (self.ec2.clone(), instance_id.to_owned());
        Box::pin(async move {
            ec2.reboot_instances()
                .instance_ids(instance_id)
                .send()
                .await
                .map_err(cloud_error)?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    //! The real client against a stand-in EC2/STS endpoint on loopback: what it sends and
    //! how it reads AWS's answers, without AWS.

    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};

    use super::*;

    const GPU_TYPE: &str = r#"<DescribeInstanceTypesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r1</requestId><instanceTypeSet><item><instanceType>g4dn.xlarge</instanceType><gpuInfo><gpus><item><name>T4</name><manufacturer>NVIDIA</manufacturer><count>1</count></item></gpus></gpuInfo></item></instanceTypeSet></DescribeInstanceTypesResponse>"#;
    const CPU_TYPE: &str = r#"<DescribeInstanceTypesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r2</requestId><instanceTypeSet><item><instanceType>t3.large</instanceType></item></instanceTypeSet></DescribeInstanceTypesResponse>"#;
    const IDENTITY: &str = r#"<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:user/lab-admin</Arn><UserId>AIDAEXAMPLE</UserId><Account>123456789012</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>r3</RequestId></ResponseMetadata></GetCallerIdentityResponse>"#;
    const REBOOTED: &str = r#"<RebootInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r4</requestId><return>true</return></RebootInstancesResponse>"#;

    /// Serves canned AWS answers by the request's `Action`; returns its URL and the bodies
    /// it received.
    fn stand_in_aws() -> (String, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let record = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let record = record.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                    let mut stream = stream;
                    loop {
                        let mut length = 0usize;
                        let mut line = String::new();
                        loop {
                            line.clear();
                            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                                return;
                            }
                            if line == "\r\n" {
                                break;
                            }
                            let lower = line.to_ascii_lowercase();
                            if let Some(value) = lower.strip_prefix("content-length:") {
                                length = value.trim().parse().unwrap_or(0);
                            }
                        }
                        let mut body = vec![0u8; length];
                        if reader.read_exact(&mut body).is_err() {
                            return;
                        }
                        let body = String::from_utf8_lossy(&body).into_owned();
                        let answer = if body.contains("Action=DescribeInstanceTypes") {
                            if body.contains("g4dn.xlarge") {
                                GPU_TYPE
                            } else {
                                CPU_TYPE
                            }
                        } else if body.contains("Action=GetCallerIdentity") {
                            IDENTITY
                        } else {
                            REBOOTED
                        };
                        if let Ok(mut seen) = record.lock() {
                            seen.push(body);
                        }
                        let reply = format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n{answer}",
                            answer.len()
                        );
                        if stream.write_all(reply.as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (url, seen)
    }

    #[tokio::test]
    async fn the_aws_client_asks_and_reads_as_aws_expects() {
        let (url, seen) = stand_in_aws();
        let cloud =
            AwsCloud::for_endpoint(&url, "us-west-2", "AKIDEXAMPLE", "not-a-real-secret").await;

        assert!(cloud.has_nvidia_gpu("g4dn.xlarge").await.expect("gpu type"));
        assert!(!cloud.has_nvidia_gpu("t3.large").await.expect("cpu type"));
        let identity = cloud.identity().await.expect("identity");
        assert_eq!(identity.account, "123456789012");
        assert_eq!(identity.arn, "arn:aws:iam::123456789012:user/lab-admin");
        cloud.reboot("i-0123456789abcdef0").await.expect("reboot");

        let seen = seen.lock().expect("lock").clone();
        assert!(
            seen.iter()
                .any(|b| b.contains("Action=DescribeInstanceTypes")
                    && b.contains("InstanceType.1=g4dn.xlarge")),
            "{seen:?}"
        );
        assert!(
            seen.iter().any(|b| b.contains("Action=RebootInstances")
                && b.contains("InstanceId.1=i-0123456789abcdef0")),
            "{seen:?}"
        );
        assert!(
            seen.iter().all(|b| !b.contains("not-a-real-secret")),
            "the secret never travels in a request body"
        );
    }
}
